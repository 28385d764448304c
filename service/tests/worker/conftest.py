"""Worker test fixtures: a real webhook receiver, fast settings, outbox rows, a running relay."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, select

from app.outbox.relay import OutboxRelay
from app.outbox.tables import event_row, outbox_events
from app.persistence.database import create_engine
from app.projects.domain.models import ProjectCreated
from app.settings import Settings
from app.worker import build_relay
from service.tests.builders import make_settings
from testsupport.webhook_receiver import Receiver

# Tiny intervals keep every scenario to a second or two.
FAST = {
    "outbox_poll_interval_seconds": 0.02,
    "outbox_batch_size": 10,
    "outbox_max_attempts": 3,
    "outbox_backoff_base_seconds": 0.02,
    "outbox_backoff_max_seconds": 0.2,
    # Generous: on a loaded CI machine an answer must never turn into a timeout by accident.
    "outbox_lease_seconds": 4.0,
    "webhook_timeout_seconds": 3.0,
    "circuit_breaker_failure_threshold": 50,
    "circuit_breaker_reset_seconds": 0.3,
}


def worker_settings(database_url: str, receiver: Receiver, **overrides: Any) -> Settings:
    return make_settings(database_url, webhook_url=receiver.url, **{**FAST, **overrides})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, receiver: Receiver) -> Settings:
    """Overrides the service fixture: the API (client fixture) and the worker share these."""
    return worker_settings(database_url, receiver)


async def add_events(settings: Settings, count: int) -> list[str]:
    """Write `count` project.created events to the outbox, as the unit of work does."""
    events = [
        ProjectCreated(project_id=uuid.uuid4(), owner_id=uuid.uuid4(), name=f"P{i}") for i in range(count)
    ]
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(outbox_events), [event_row(event) for event in events])
    finally:
        await engine.dispose()
    return [str(event.event_id) for event in events]


async def outbox_rows(settings: Settings) -> dict[str, Any]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(outbox_events))).all()
    finally:
        await engine.dispose()
    return {str(row.id): row for row in rows}


@contextlib.asynccontextmanager
async def running_relay(settings: Settings, **relay_args: Any) -> AsyncIterator[OutboxRelay]:
    """The relay polling in the test's event loop (its own metrics registry) until the block ends."""
    engine = create_engine(settings)
    relay = build_relay(settings, engine, CollectorRegistry(), **relay_args)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await task
        await relay.sender.aclose()
        await engine.dispose()


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `check()` holds, yielding to the loop (the relay runs in it: never block)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)


def metric(relay: OutboxRelay, sample: str, **labels: str) -> float | None:
    value: float | None = relay.metrics.registry.get_sample_value(sample, labels)
    return value
