"""SQLAlchemy implementation of the unit of work (Core, on one AsyncConnection).

Aggregates touched in the transaction are registered with `track`; on commit
their domain events are written to the outbox in the same transaction, so a
committed change is never without its notification (and vice versa).
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from app.core.database import checkout_gate, checkout_wait_observer
from app.core.events import DomainEvent
from app.outbox.tables import event_row, outbox_events


class EventSource(Protocol):
    def pull_events(self) -> list[DomainEvent]: ...


class SqlUnitOfWork:
    """`read_only=True`: no transaction at all (autocommit), for use cases that run one SELECT.

    A single statement is atomic and sees one snapshot on its own, so BEGIN and ROLLBACK
    would add two database round trips (a third of the list endpoint's cost) and nothing
    else; `commit()` then refuses, so a write can never slip in without its transaction.
    """

    def __init__(self, engine: AsyncEngine, *, read_only: bool = False) -> None:
        self._engine = engine
        self._read_only = read_only
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._tracked: list[EventSource] = []
        self._gate: asyncio.Semaphore | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._connection

    def track(self, aggregate: EventSource) -> None:
        self._tracked.append(aggregate)

    async def __aenter__(self) -> Self:
        started = time.perf_counter()
        self._gate = checkout_gate(self._engine)
        if self._gate is not None:
            await self._gate.acquire()
        try:
            self._connection = await self._engine.connect()
            # Waiting for a permit and a pooled connection: the pool's saturation, per request.
            if (observe := checkout_wait_observer(self._engine)) is not None:
                observe(time.perf_counter() - started)
            if self._read_only and self._engine.dialect.name == "postgresql":
                await self._connection.execution_options(isolation_level="AUTOCOMMIT")
            else:
                # SQLite runs in-process (a transaction costs no round trip), and its driver's
                # autocommit switch would undo the explicit-BEGIN recipe in core/database.py.
                self._transaction = await self._connection.begin()
        except BaseException:
            await self.__aexit__(None, None, None)  # no connection or permit may leak
            raise
        self._bind_repositories(self._connection)
        return self

    def _release_gate(self) -> None:
        if self._gate is not None:
            self._gate.release()
            self._gate = None

    def _bind_repositories(self, connection: AsyncConnection) -> None:
        """Subclasses create their repositories on the connection."""

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("commit() in a read-only unit of work")
        events = [event for aggregate in self._tracked for event in aggregate.pull_events()]
        if events:
            await self.connection.execute(insert(outbox_events), [event_row(event) for event in events])
        assert self._transaction is not None
        await self._transaction.commit()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._transaction is not None and self._transaction.is_active:
                await self._transaction.rollback()
        finally:
            try:
                if self._connection is not None:
                    await self._connection.close()
            finally:
                self._release_gate()
            self._connection = None
            self._transaction = None
            self._tracked.clear()
