"""The periodic sweep of expired idempotency keys, run by the outbox worker.

The API drops a user's expired keys only when that user claims a new one, so the keys of
users who stop writing would stay forever. The worker deletes every expired key each
IDEMPOTENCY_SWEEP_INTERVAL_SECONDS, in chunks of PURGE_CHUNK_SIZE rows with one short
transaction each: no long-held locks, no long statement against DB_STATEMENT_TIMEOUT_MS.

Several worker replicas: each chunk's transaction first takes a PostgreSQL advisory lock
with `pg_try_advisory_xact_lock`; a replica that finds it taken leaves this round to the
one holding it. SQLite (local development) runs a single worker and needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.idempotency.store import PURGE_CHUNK_SIZE, purge_expired_idempotency_keys
from app.kernel.clock import utcnow

log = logging.getLogger("app.worker")

# Any 64-bit number unique to this service (the migrations' lock is 7_246_001).
SWEEP_LOCK_ID = 7_246_002


class IdempotencySweeper:
    def __init__(
        self,
        engine: AsyncEngine,
        registry: CollectorRegistry,
        *,
        interval_seconds: float,
        chunk_size: int = PURGE_CHUNK_SIZE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._interval = interval_seconds
        self._chunk_size = chunk_size
        self._clock = clock
        self.swept = Counter(
            "idempotency_keys_swept",
            "Expired idempotency keys deleted by the worker's periodic sweep.",
            registry=registry,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep at once, then every interval, until `stop` is set."""
        while not stop.is_set():
            try:
                await self.sweep_once(stop)
            except Exception:  # database unreachable, etc.: the next round tries again
                log.exception("idempotency key sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)

    async def sweep_once(self, stop: asyncio.Event | None = None) -> int | None:
        """Delete the keys expired by now; the rows removed, or None if another replica is sweeping."""
        now = self._clock()
        removed = chunks = 0
        while True:
            async with self._engine.begin() as conn:
                if not await _take_sweep_lock(conn):
                    break  # another replica is sweeping (or took over between two chunks)
                deleted = await purge_expired_idempotency_keys(conn, now, limit=self._chunk_size)
            chunks += 1
            removed += deleted
            self.swept.inc(deleted)
            # On SIGTERM the rest is left to the next round, of this worker or another one.
            if deleted < self._chunk_size or (stop is not None and stop.is_set()):
                break
        if chunks == 0:
            log.debug("idempotency key sweep skipped: another worker holds the lock")
            return None
        log.info("expired idempotency keys swept", extra={"removed": removed, "chunks": chunks})
        return removed


async def _take_sweep_lock(conn: AsyncConnection) -> bool:
    """Held until this chunk's transaction ends; False when another transaction holds it."""
    if conn.dialect.name != "postgresql":
        return True
    taken = await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": SWEEP_LOCK_ID})
    return bool(taken)
