"""The worker as a real process (`python -m app.worker`) on PostgreSQL: a SIGKILL mid-batch loses
nothing, SIGTERM finishes the batch and exits 0, its own /metrics, refusing to start unconfigured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from service.tests.worker.conftest import add_events, outbox_rows, worker_settings
from testsupport.servers import free_port, stop_process, wait_until
from testsupport.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[3]


class WorkerProcess:
    def __init__(self, settings: Settings, log: Path) -> None:
        self.metrics_port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "service" / "src"),
            **{name.upper(): str(value) for name, value in _env_values(settings).items()},
            "WORKER_METRICS_PORT": str(self.metrics_port),
        }
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.worker"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as response:
            return str(response.read().decode())

    def liveness(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/health/live", timeout=2
            ) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def wait_serving(self) -> None:
        wait_until(lambda: "outbox_events_pending" in self.metrics(), 20, "worker /metrics")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)


def _env_values(settings: Settings) -> dict[str, Any]:
    values = settings.model_dump(exclude_none=True, exclude={"cors_origins", "trusted_hosts"})
    values["jwt_secret"] = settings.jwt_secret.get_secret_value() if settings.jwt_secret else ""
    return {k: v.value if hasattr(v, "value") else v for k, v in values.items()}


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / "worker.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        stop_process(worker.process, signum=signal.SIGKILL)


async def test_a_worker_killed_mid_batch_loses_nothing(
    postgres_url: str, receiver: Receiver, spawn: Any
) -> None:
    settings = worker_settings(postgres_url, receiver)
    ids = await add_events(settings, 25)
    receiver.stall()  # the first batch hangs in the receiver: it is in flight when the worker dies
    first = spawn(settings)
    receiver.wait_until(lambda r: len(r.requests) >= settings.outbox_batch_size, timeout=20)
    first.stop(signal.SIGKILL)
    in_flight = set(receiver.event_ids())
    rows = await outbox_rows(settings)
    assert {rows[i].status for i in ids} == {"pending"}, "nothing was recorded as delivered"

    receiver.answer_new_requests()
    restarted_at = time.monotonic()
    second = spawn(settings)
    receiver.wait_until(lambda r: set(r.accepted) >= set(ids), timeout=30)
    recovered_in = time.monotonic() - restarted_at
    assert second.stop() == 0

    rows = await outbox_rows(settings)
    assert {rows[i].status for i in ids} == {"delivered"}
    # The killed batch was claimed again once its lease ran out: attempt 2, delivered at least once.
    assert {rows[i].attempts for i in in_flight} == {2}
    assert {rows[i].attempts for i in set(ids) - in_flight} == {1}
    assert len(in_flight) == settings.outbox_batch_size
    duplicates = len(receiver.requests) - len(set(receiver.event_ids()))
    print(
        f"\n[worker] SIGKILL with {len(in_flight)} events in flight: all {len(ids)} delivered after restart "
        f"in {recovered_in:.1f} s (lease {settings.outbox_lease_seconds:g} s); "
        f"{duplicates} arrived twice, de-duplicated by eventId"
    )


async def test_sigterm_finishes_the_batch_in_hand_then_exits_zero(
    postgres_url: str, receiver: Receiver, spawn: Any
) -> None:
    settings = worker_settings(postgres_url, receiver)
    receiver.delay = 1.0  # a batch that takes a second: SIGTERM arrives in the middle of it
    batch = await add_events(settings, 5)
    worker = spawn(settings)
    worker.wait_serving()
    receiver.wait_until(lambda r: len(r.requests) == 5)
    metrics = worker.metrics()
    later = await add_events(settings, 3)  # due now, but the worker must stop claiming
    started = time.monotonic()
    assert worker.stop(signal.SIGTERM) == 0
    stopped_in = time.monotonic() - started

    rows = await outbox_rows(settings)
    assert {rows[i].status for i in batch} == {"delivered"}
    assert {(rows[i].status, rows[i].attempts) for i in later} == {("pending", 0)}
    assert sorted(receiver.accepted) == sorted(batch)
    messages = [json.loads(line)["message"] for line in worker.log.read_text().splitlines()]
    stop_requested = messages.index("stop requested: finishing the batch in hand")
    assert messages[stop_requested:].count("event delivered") == 5, "the batch finished after SIGTERM"
    assert messages[-1] == "worker stopped"
    assert 'circuit_breaker_state{name="webhook"} 0.0' in metrics
    for name in ("outbox_events_pending", "outbox_oldest_pending_age_seconds", "outbox_events_dead_lettered"):
        assert f"\n{name} " in metrics
    assert 'outbox_deliveries_total{outcome="dead_lettered"} 0.0' in metrics
    assert "process_cpu_seconds_total" in metrics
    print(f"\n[worker] SIGTERM mid-batch (1 s receiver): batch finished, exit 0 after {stopped_in:.2f} s")


def _sample(metrics: str, name: str) -> float:
    [line] = [line for line in metrics.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


def test_liveness_and_poll_metrics_follow_the_relay_loop(
    postgres_url: str, receiver: Receiver, spawn: Any
) -> None:
    worker = spawn(worker_settings(postgres_url, receiver))
    worker.wait_serving()
    wait_until(
        lambda: _sample(worker.metrics(), "outbox_last_poll_success_timestamp_seconds") > 0, 20, "a poll"
    )
    metrics = worker.metrics()
    assert time.time() - _sample(metrics, "outbox_last_poll_success_timestamp_seconds") < 10
    assert _sample(metrics, "outbox_poll_failures_total") == 0
    status, body = worker.liveness()
    assert status == 200 and body["status"] == "ok", body
    assert body["loopAgeSeconds"] < 5
    assert worker.stop() == 0


def test_refuses_to_start_without_a_webhook_url(postgres_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "service" / "src"), "DATABASE_URL": postgres_url}
    env.pop("WEBHOOK_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "app.worker"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr == "worker: WEBHOOK_URL is not set: the worker has nowhere to deliver events\n"
