"""`python -m app.worker` commands in-process: dead-letter replay, configuration errors, serve()."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from app.outbox.queue import OutboxQueue
from app.persistence.database import create_engine
from app.settings import Settings
from app.worker import main, serve
from service.tests.worker.conftest import add_events, outbox_rows, worker_settings
from testsupport.servers import free_port
from testsupport.webhook_receiver import Receiver


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings come from the environment; main() also reconfigures logging: restore both."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    monkeypatch.delenv("WEBHOOK_SIGNING_SECRET", raising=False)
    yield monkeypatch
    root.handlers[:], root.level = handlers, level


async def dead_letter_all(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        queue = OutboxQueue(engine, lease_seconds=30)
        await queue.record(dead=[(event, "HTTP 410: gone") for event in await queue.claim(100)])
    finally:
        await engine.dispose()


@pytest.fixture
async def dead_events(sqlite_url: str, receiver: Receiver, env: pytest.MonkeyPatch) -> list[str]:
    settings = worker_settings(sqlite_url, receiver)
    ids = await add_events(settings, 3)
    await dead_letter_all(settings)
    env.setenv("DATABASE_URL", sqlite_url)
    return ids


async def test_replay_dead_puts_every_dead_event_back_in_the_queue(
    dead_events: list[str], sqlite_url: str, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["replay-dead"]) == 0
    assert "replayed 3 dead-lettered event(s)" in capsys.readouterr().out
    rows = await outbox_rows(worker_settings(sqlite_url, receiver))
    assert {(row.status, row.attempts, row.last_error) for row in rows.values()} == {("pending", 0, None)}


async def test_replay_dead_by_event_id_replays_only_those(
    dead_events: list[str], sqlite_url: str, receiver: Receiver
) -> None:
    chosen = dead_events[1]
    assert await asyncio.to_thread(main, ["replay-dead", "--event-id", chosen]) == 0
    rows = await outbox_rows(worker_settings(sqlite_url, receiver))
    assert {i: rows[i].status for i in dead_events} == {
        dead_events[0]: "dead",
        chosen: "pending",
        dead_events[2]: "dead",
    }


async def test_replay_dead_says_when_an_id_is_not_dead_lettered(
    dead_events: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = str(uuid.uuid4())
    code = await asyncio.to_thread(main, ["replay-dead", "--event-id", dead_events[0], "--event-id", unknown])
    assert code == 1
    assert capsys.readouterr().err == (
        "replayed 1 of 2 requested events: the others are not dead-lettered "
        "(unknown id, or already pending/delivered)\n"
    )


def test_replay_dead_against_a_database_without_the_schema_is_one_line_and_exit_1(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    assert main(["replay-dead"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("worker: replay failed: OperationalError: ")
    assert "no such table: outbox_events" in err
    assert err.count("\n") == 1


def test_replay_dead_refuses_an_id_that_is_not_a_uuid(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["replay-dead", "--event-id", "42"])
    assert exit_info.value.code == 2
    assert "not an event id (UUID): '42'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({}, "worker: WEBHOOK_URL is not set: the worker has nowhere to deliver events\n"),
        (
            {"WEBHOOK_URL": "ftp://example.com/x"},
            "worker: WEBHOOK_URL must be an http(s) URL, got 'ftp://example.com/x'\n",
        ),
        (
            {
                "WEBHOOK_URL": "http://127.0.0.1:9/x",
                "OUTBOX_LEASE_SECONDS": "5",
                "WEBHOOK_TIMEOUT_SECONDS": "5",
            },
            "worker: OUTBOX_LEASE_SECONDS (5) must exceed WEBHOOK_TIMEOUT_SECONDS (5), "
            "or a slow delivery would be claimed twice\n",
        ),
        (
            {"WEBHOOK_URL": "https://hooks.example.com/x", "ENVIRONMENT": "prod", "JWT_SECRET": "j" * 40},
            "worker: WEBHOOK_SIGNING_SECRET is not set: ENVIRONMENT=prod requires signed deliveries\n",
        ),
        (
            {
                "WEBHOOK_URL": "https://hooks.example.com/x",
                "ENVIRONMENT": "staging",
                "JWT_SECRET": "j" * 40,
                "WEBHOOK_SIGNING_SECRET": "changeme",
            },
            "worker: invalid settings: Value error, WEBHOOK_SIGNING_SECRET must be set to a random value of "
            "at least 32 characters when ENVIRONMENT=staging\n",
        ),
        (
            {"OUTBOX_BATCH_SIZE": "0"},
            "worker: invalid settings: OUTBOX_BATCH_SIZE: Input should be greater than or equal to 1\n",
        ),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        env.setenv(name, value)
    assert main([], registry=CollectorRegistry()) == 2
    assert capsys.readouterr().err == message


def test_a_busy_metrics_port_is_one_line_and_exit_1(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env.setenv("WEBHOOK_URL", "http://127.0.0.1:9/x")
        env.setenv("WORKER_METRICS_PORT", str(port))
        assert main([], registry=CollectorRegistry()) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"worker: cannot serve metrics on 127.0.0.1:{port}: ")
    assert err.count("\n") == 1


async def test_serve_delivers_until_stopped(sqlite_url: str, receiver: Receiver) -> None:
    settings = worker_settings(sqlite_url, receiver, worker_metrics_port=free_port())
    ids = await add_events(settings, 2)
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(settings, CollectorRegistry(), stop))
    while len(receiver.accepted) < 2:
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(serving, timeout=10)
    rows = await outbox_rows(settings)
    assert {rows[i].status for i in ids} == {"delivered"}
