"""The worker's sweep of expired idempotency keys: chunks, one replica at a time, its interval."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.idempotency.sweep import SWEEP_LOCK_ID, IdempotencySweeper
from app.idempotency.tables import idempotency_keys
from app.identity.infrastructure.repository import SqlUserRepository
from app.kernel.clock import utcnow
from app.persistence.database import create_engine
from app.settings import Settings
from app.worker import build_sweeper, serve
from service.tests.builders import a_user
from service.tests.worker.conftest import add_events, wait_for, worker_settings
from testsupport.webhook_receiver import Receiver

SWEPT = "idempotency_keys_swept_total"


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    db = create_engine(settings)
    yield db
    await db.dispose()


async def add_keys(engine: AsyncEngine, *, expired: int, live: int) -> set[str]:
    """One user's keys, `expired` of them past their expiry; returns the live keys."""
    user, now = a_user(), utcnow()
    rows = [
        {
            "user_id": user.id,
            "key": f"{'expired' if i < expired else 'live'}-{uuid.uuid4().hex[:8]}",
            "request_hash": "0" * 64,
            "status_code": 201,
            "response_body": {},
            "created_at": now - timedelta(days=2),
            "expires_at": now - timedelta(seconds=1) if i < expired else now + timedelta(hours=1),
        }
        for i in range(expired + live)
    ]
    async with engine.begin() as conn:
        await SqlUserRepository(conn).add(user)
        await conn.execute(insert(idempotency_keys), rows)
    return {row["key"] for row in rows if row["key"].startswith("live")}


async def stored_keys(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.scalars(select(idempotency_keys.c.key))).all())


async def test_a_sweep_deletes_every_expired_key_chunk_by_chunk_and_keeps_live_ones(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    live = await add_keys(engine, expired=5, live=2) | await add_keys(engine, expired=2, live=1)
    registry = CollectorRegistry()
    sweeper = IdempotencySweeper(engine, registry, interval_seconds=60, chunk_size=2)
    with caplog.at_level(logging.INFO, logger="app.worker"):
        assert await sweeper.sweep_once() == 7
    assert await stored_keys(engine) == live
    assert registry.get_sample_value(SWEPT) == 7
    [record] = [r for r in caplog.records if r.message == "expired idempotency keys swept"]
    assert (record.removed, record.chunks) == (7, 4)  # type: ignore[attr-defined]
    assert await sweeper.sweep_once() == 0


async def test_on_stop_the_sweep_ends_after_the_chunk_in_hand(engine: AsyncEngine) -> None:
    await add_keys(engine, expired=3, live=0)
    stopping = asyncio.Event()
    stopping.set()
    sweeper = IdempotencySweeper(engine, CollectorRegistry(), interval_seconds=60, chunk_size=1)
    assert await sweeper.sweep_once(stopping) == 1
    assert len(await stored_keys(engine)) == 2


async def test_only_one_replica_sweeps_at_a_time(postgres_url: str, receiver: Receiver) -> None:
    engine = create_engine(worker_settings(postgres_url, receiver))
    try:
        live = await add_keys(engine, expired=3, live=1)
        sweeper = IdempotencySweeper(engine, CollectorRegistry(), interval_seconds=60)
        async with engine.connect() as other_replica, other_replica.begin():
            lock = text("SELECT pg_try_advisory_xact_lock(:id)")
            assert await other_replica.scalar(lock, {"id": SWEEP_LOCK_ID})
            assert await sweeper.sweep_once() is None
            assert len(await stored_keys(engine)) == 4
        assert await sweeper.sweep_once() == 3  # the other replica's chunk committed: its lock is gone
        assert await stored_keys(engine) == live
    finally:
        await engine.dispose()


async def test_the_worker_sweeps_every_interval(postgres_url: str, receiver: Receiver) -> None:
    settings = worker_settings(postgres_url, receiver, idempotency_sweep_interval_seconds=0.1)
    engine = create_engine(settings)
    registry = CollectorRegistry()
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(settings, registry, stop))
    try:
        await wait_for(lambda: registry.get_sample_value(SWEPT) == 0)  # the sweep at start-up, empty
        live = await add_keys(engine, expired=4, live=2)
        await wait_for(lambda: registry.get_sample_value(SWEPT) == 4)  # a later round
        assert await stored_keys(engine) == live
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)
        await engine.dispose()


async def test_a_zero_interval_turns_the_sweep_off(postgres_url: str, receiver: Receiver) -> None:
    settings = worker_settings(postgres_url, receiver, idempotency_sweep_interval_seconds=0)
    engine = create_engine(settings)
    registry = CollectorRegistry()
    assert build_sweeper(settings, engine, registry) is None
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(settings, registry, stop))
    try:
        await add_keys(engine, expired=2, live=0)
        await add_events(settings, 1)
        await wait_for(lambda: len(receiver.accepted) == 1)  # the worker is up and polling
        assert registry.get_sample_value(SWEPT) is None
        assert len(await stored_keys(engine)) == 2
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)
        await engine.dispose()


async def test_a_failed_sweep_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(database_url="sqlite+aiosqlite:////nonexistent/dir/x.db")
    broken = create_engine(settings)
    sweeper = IdempotencySweeper(broken, CollectorRegistry(), interval_seconds=0.01)
    stop = asyncio.Event()
    running = asyncio.create_task(sweeper.run(stop))
    try:
        await wait_for(lambda: caplog.text.count("idempotency key sweep failed") >= 2)
    finally:
        stop.set()
        await running
        await broken.dispose()
