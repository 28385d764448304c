"""SQLAlchemy implementation of the unit of work (Core, on one AsyncConnection).

Aggregates touched in the transaction are registered with `track`; on commit
their domain events are written to the outbox in the same transaction, so a
committed change is never without its notification (and vice versa).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from app.core.events import DomainEvent
from app.outbox.tables import event_row, outbox_events


class EventSource(Protocol):
    def pull_events(self) -> list[DomainEvent]: ...


class SqlUnitOfWork:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._tracked: list[EventSource] = []

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._connection

    def track(self, aggregate: EventSource) -> None:
        self._tracked.append(aggregate)

    async def __aenter__(self) -> Self:
        self._connection = await self._engine.connect()
        self._transaction = await self._connection.begin()
        self._bind_repositories(self._connection)
        return self

    def _bind_repositories(self, connection: AsyncConnection) -> None:
        """Subclasses create their repositories on the connection."""

    async def commit(self) -> None:
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
            if self._connection is not None:
                await self._connection.close()
            self._connection = None
            self._transaction = None
            self._tracked.clear()
