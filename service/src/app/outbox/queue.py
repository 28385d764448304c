"""The outbox table as a durable work queue (claim with a lease, then record the outcome).

Claiming is one short `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n)`
that bumps `attempts` and pushes `available_at` forward by the lease, then commits.
Delivery happens outside any transaction; a second short transaction records the
outcome. A worker killed between the two leaves rows whose lease simply expires:
another (or the restarted) worker claims them again, so nothing is lost and delivery
is at least once. Concurrent workers on PostgreSQL skip each other's locked rows.

SQLite has no row locks (`SKIP LOCKED` compiles to nothing): it supports one worker,
which is what local development runs. The claim is a single statement there too, so
it takes SQLite's write lock up front instead of upgrading a read snapshot.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.kernel.clock import utcnow
from app.outbox.tables import OutboxStatus, outbox_events

_t = outbox_events


@dataclass(frozen=True)
class ClaimedEvent:
    id: uuid.UUID
    payload: dict[str, Any]
    # Including this claim: 1 on the first delivery attempt.
    attempts: int


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    oldest_pending_age_seconds: float
    dead: int


class OutboxQueue:
    def __init__(
        self, engine: AsyncEngine, *, lease_seconds: float, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._engine = engine
        self._lease = timedelta(seconds=lease_seconds)
        self._clock = clock

    async def claim(self, limit: int) -> list[ClaimedEvent]:
        """Lease up to `limit` due events, oldest first; the lease is committed before returning."""
        now = self._clock()
        due = (
            select(_t.c.id)
            .where(_t.c.status == OutboxStatus.PENDING.value, _t.c.available_at <= now)
            .order_by(_t.c.available_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(_t)
            .where(_t.c.id.in_(due))
            .values(attempts=_t.c.attempts + 1, available_at=now + self._lease)
            .returning(_t.c.id, _t.c.payload, _t.c.attempts)
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return [ClaimedEvent(row.id, row.payload, row.attempts) for row in rows]

    async def record(
        self,
        *,
        delivered: Sequence[ClaimedEvent] = (),
        retry: Sequence[tuple[ClaimedEvent, float, str]] = (),
        dead: Sequence[tuple[ClaimedEvent, str]] = (),
        not_attempted: Sequence[tuple[ClaimedEvent, float]] = (),
    ) -> None:
        """Write a batch's outcomes in one transaction.

        Each update is guarded by the claim's `attempts`, so a worker whose lease ran
        out (and whose rows another worker re-claimed) cannot overwrite the newer claim.
        """
        now = self._clock()
        async with self._engine.begin() as conn:
            for event in delivered:
                await self._update(conn, event, status=OutboxStatus.DELIVERED.value, delivered_at=now)
            for event, delay, error in retry:
                await self._update(conn, event, available_at=now + timedelta(seconds=delay), last_error=error)
            for event, error in dead:
                await self._update(conn, event, status=OutboxStatus.DEAD.value, last_error=error)
            for event, delay in not_attempted:
                # The call never went out (breaker open): give the attempt back.
                await self._update(
                    conn, event, attempts=_t.c.attempts - 1, available_at=now + timedelta(seconds=delay)
                )

    @staticmethod
    async def _update(conn: AsyncConnection, event: ClaimedEvent, **values: Any) -> None:
        await conn.execute(
            update(_t)
            .where(
                _t.c.id == event.id,
                _t.c.status == OutboxStatus.PENDING.value,
                _t.c.attempts == event.attempts,
            )
            .values(**values)
        )

    async def stats(self) -> OutboxStats:
        """Backlog figures for the worker's gauges: one grouped query over the status index."""
        query = (
            select(_t.c.status, func.count(), func.min(_t.c.created_at))
            .where(_t.c.status.in_([OutboxStatus.PENDING.value, OutboxStatus.DEAD.value]))
            .group_by(_t.c.status)
        )
        async with self._engine.connect() as conn:
            rows = {row[0]: (row[1], row[2]) for row in (await conn.execute(query)).all()}
        pending, oldest = rows.get(OutboxStatus.PENDING.value, (0, None))
        dead, _ = rows.get(OutboxStatus.DEAD.value, (0, None))
        age = max(0.0, (self._clock() - oldest).total_seconds()) if oldest is not None else 0.0
        return OutboxStats(pending=int(pending), oldest_pending_age_seconds=age, dead=int(dead))

    async def replay_dead(self, event_ids: Sequence[uuid.UUID] | None = None) -> int:
        """Put dead-lettered events (all, or the given ids) back in the queue with fresh attempts."""
        replay = (
            update(_t)
            .where(_t.c.status == OutboxStatus.DEAD.value)
            .values(
                status=OutboxStatus.PENDING.value, attempts=0, available_at=self._clock(), last_error=None
            )
        )
        if event_ids is not None:
            replay = replay.where(_t.c.id.in_(list(event_ids)))
        async with self._engine.begin() as conn:
            result = await conn.execute(replay)
        return int(result.rowcount)
