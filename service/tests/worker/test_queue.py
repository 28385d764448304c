"""The outbox table as a queue, on SQLite and PostgreSQL: leases, guarded outcomes, stats, replay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.clock import utcnow
from app.outbox.queue import OutboxQueue
from app.outbox.tables import outbox_events
from app.persistence.database import create_engine
from app.settings import Settings
from service.tests.builders import make_settings
from service.tests.worker.conftest import add_events, outbox_rows

LEASE = 30.0


class MovableClock:
    """Real time, plus whatever the test has skipped ahead; `frozen` pins it for exact comparisons."""

    def __init__(self) -> None:
        self.offset = timedelta()
        self.frozen: datetime | None = None

    def __call__(self) -> datetime:
        return self.frozen or utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def queue(engine: AsyncEngine, clock: MovableClock) -> OutboxQueue:
    return OutboxQueue(engine, lease_seconds=LEASE, clock=clock)


async def test_a_claimed_event_is_leased_until_the_lease_expires(
    queue: OutboxQueue, settings: Settings, clock: MovableClock
) -> None:
    ids = await add_events(settings, 3)
    first = await queue.claim(10)
    assert sorted(str(e.id) for e in first) == sorted(ids)
    assert {e.attempts for e in first} == {1}
    assert first[0].payload["eventType"] == "project.created"
    assert await queue.claim(10) == [], "leased events are not handed out twice"
    clock.advance(LEASE - 1)
    assert await queue.claim(10) == []
    clock.advance(1)
    again = await queue.claim(10)
    assert sorted(str(e.id) for e in again) == sorted(ids)
    assert {e.attempts for e in again} == {2}


async def test_claims_the_oldest_due_events_first_up_to_the_limit(
    queue: OutboxQueue, settings: Settings, clock: MovableClock
) -> None:
    ids = []
    for _ in range(3):
        ids += await add_events(settings, 1)
        await asyncio.sleep(0.01)  # distinct occurred_at, hence available_at
    assert {str(e.id) for e in await queue.claim(2)} == set(ids[:2])


async def test_records_each_outcome(queue: OutboxQueue, settings: Settings, clock: MovableClock) -> None:
    ids = await add_events(settings, 4)
    claimed = {str(e.id): e for e in await queue.claim(10)}
    now = clock.frozen = utcnow()
    delivered, retried, dead, skipped = (claimed[i] for i in ids)
    await queue.record(
        delivered=[delivered],
        retry=[(retried, 7.5, "HTTP 503: busy")],
        dead=[(dead, "rejected")],
        not_attempted=[(skipped, 2.0)],
    )
    rows = await outbox_rows(settings)
    assert rows[ids[0]].status == "delivered"
    assert rows[ids[0]].delivered_at == now
    assert (rows[ids[1]].status, rows[ids[1]].attempts, rows[ids[1]].last_error) == (
        "pending",
        1,
        "HTTP 503: busy",
    )
    assert rows[ids[1]].available_at == now + timedelta(seconds=7.5)
    assert (rows[ids[2]].status, rows[ids[2]].last_error) == ("dead", "rejected")
    assert (rows[ids[3]].status, rows[ids[3]].attempts) == ("pending", 0), (
        "an unsent event keeps its attempts"
    )
    assert rows[ids[3]].available_at == now + timedelta(seconds=2)


async def test_a_worker_whose_lease_expired_cannot_overwrite_the_newer_claim(
    queue: OutboxQueue, settings: Settings, clock: MovableClock
) -> None:
    [event_id] = await add_events(settings, 1)
    [stale] = await queue.claim(1)
    clock.advance(LEASE)
    [fresh] = await queue.claim(1)
    await queue.record(dead=[(stale, "late verdict of the first worker")])
    row = (await outbox_rows(settings))[event_id]
    assert (row.status, row.attempts, row.last_error) == ("pending", 2, None)
    await queue.record(delivered=[fresh])
    assert (await outbox_rows(settings))[event_id].status == "delivered"


async def test_stats_count_pending_and_dead_and_age_the_oldest_pending(
    queue: OutboxQueue, settings: Settings, clock: MovableClock
) -> None:
    empty = await queue.stats()
    assert (empty.pending, empty.oldest_pending_age_seconds, empty.dead) == (0, 0.0, 0)
    ids = await add_events(settings, 3)
    claimed = {str(e.id): e for e in await queue.claim(10)}
    await queue.record(delivered=[claimed[ids[0]]], dead=[(claimed[ids[1]], "x")])
    clock.advance(90)
    stats = await queue.stats()
    assert (stats.pending, stats.dead) == (1, 1)
    assert 90 <= stats.oldest_pending_age_seconds < 100


async def test_replays_dead_events_all_or_by_id(queue: OutboxQueue, settings: Settings) -> None:
    ids = await add_events(settings, 3)
    claimed = await queue.claim(10)
    await queue.record(dead=[(event, "HTTP 410: gone") for event in claimed])
    assert await queue.replay_dead([uuid.UUID(ids[0]), uuid.uuid4()]) == 1
    rows = await outbox_rows(settings)
    assert (rows[ids[0]].status, rows[ids[0]].attempts, rows[ids[0]].last_error) == ("pending", 0, None)
    assert rows[ids[1]].status == "dead"
    assert await queue.replay_dead() == 2
    assert {row.status for row in (await outbox_rows(settings)).values()} == {"pending"}
    assert await queue.replay_dead() == 0


async def test_concurrent_workers_skip_rows_locked_by_each_other(postgres_url: str) -> None:
    """PostgreSQL only: SKIP LOCKED hands a second worker the other rows instead of blocking it."""
    settings = make_settings(postgres_url)
    ids = await add_events(settings, 5)
    engine = create_engine(settings)
    try:
        async with engine.connect() as other_worker, other_worker.begin():
            locked = (
                (
                    await other_worker.execute(
                        select(outbox_events.c.id)
                        .order_by(outbox_events.c.available_at)
                        .limit(2)
                        .with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            queue = OutboxQueue(engine, lease_seconds=LEASE)
            claimed = await asyncio.wait_for(queue.claim(10), timeout=5)
        assert {str(e.id) for e in claimed} == set(ids) - {str(i) for i in locked}
        assert len(claimed) == 3
    finally:
        await engine.dispose()
