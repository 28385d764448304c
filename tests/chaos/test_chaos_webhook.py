"""The webhook receiver slow, then failing, then down, under load: the worker's breaker opens and
closes again, the API stays within its latency SLO, and every event is delivered after recovery
or dead-lettered, none lost; redeliveries carry the same event (a receiver de-duplicates by id)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest

from tests.chaos.harness import (
    WORKER_SETTINGS,
    Figures,
    Profile,
    Stack,
    latency_verdict,
    leaky_5xx,
    report,
    settle_events,
    start_load,
)
from testsupport.load import Balancer
from testsupport.processes import WorkerProcess, metric_value

pytestmark = pytest.mark.slow

BREAKER = 'circuit_breaker_state{name="webhook"}'
OPEN, CLOSED = 2.0, 0.0
SLOWER_THAN_TIMEOUT = float(WORKER_SETTINGS["WEBHOOK_TIMEOUT_SECONDS"]) + 0.5


async def watch_breaker(worker: WorkerProcess, seen: list[tuple[float, float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            state = metric_value(await asyncio.to_thread(worker.metrics), BREAKER)
            if state is not None:
                seen.append((time.monotonic(), state))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def test_webhook_receiver_slow_failing_down_nothing_lost(profile: Profile, shared_stack: Stack) -> None:
    stack = shared_stack
    receiver = stack.receiver
    phase = profile.fault_seconds / 3
    load = start_load(Balancer([api.base_url for api in stack.apis]), stack.tokens, profile)
    breaker: list[tuple[float, float]] = []
    watching = asyncio.Event()
    watcher = asyncio.create_task(watch_breaker(stack.worker, breaker, watching))

    await asyncio.sleep(profile.before_seconds)
    fault_at = time.monotonic()
    receiver.delay = SLOWER_THAN_TIMEOUT  # slow: every delivery times out
    await asyncio.sleep(phase)
    receiver.delay, receiver.status = 0.0, 503  # failing
    await asyncio.sleep(phase)
    receiver.status = 200
    receiver.go_down()  # down: connection refused
    await asyncio.sleep(phase)
    healed_at = time.monotonic()
    receiver.come_back()
    result = await load.finish(profile.after_seconds)
    account = await settle_events(receiver, stack.database_url, result.acknowledged_writes, timeout=60)
    settled_at = time.monotonic()
    await asyncio.sleep(0.3)  # one more breaker sample after the backlog drained
    watching.set()
    await watcher

    opened_at = next((at for at, state in breaker if at >= fault_at and state == OPEN), None)
    openings = sum(1 for (_, old), (_, new) in itertools.pairwise(breaker) if new == OPEN != old)
    closed_at = next((at for at, state in breaker if at >= healed_at and state == CLOSED), None)
    latency = latency_verdict(result, fault_at, healed_at)
    report(
        Figures(
            "webhook receiver slow, failing, down",
            result.sent,
            len(result.failed),
            0,
            len(account.lost),
            account.duplicated,
            None if opened_at is None else opened_at - fault_at,
            settled_at - healed_at,
            f"breaker opened {openings}x, closed "
            f"{'-' if closed_at is None else f'{closed_at - healed_at:.2f} s'} after recovery; "
            f"{account.delivered} delivered, {account.dead_lettered} dead-lettered; "
            f"API {latency.describe()}",
        )
    )

    assert result.failed == [] and leaky_5xx(result.outcomes) == []
    assert account.lost == [], "every event is delivered after recovery or dead-lettered"
    assert account.delivered + account.dead_lettered == len(result.acknowledged_writes)
    assert opened_at is not None, "the breaker never opened"
    assert closed_at is not None and breaker[-1][1] == CLOSED, "the breaker did not close after recovery"
    assert latency.within, latency.describe()
