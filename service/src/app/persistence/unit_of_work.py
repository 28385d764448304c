"""SQLAlchemy implementation of the unit of work (Core, on one AsyncConnection).

One transaction per unit of work, rolled back unless committed. Repositories report every
aggregate they add or load (`seen`, cosmicpython's pattern); on commit the events those
aggregates raised are handed to the event sink in the same transaction (the outbox), so a
committed change is never without its notification, and no service has to remember to
register what it touched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from app.kernel.events import DomainEvent
from app.persistence.database import Database


class EventSource(Protocol):
    def pull_events(self) -> list[DomainEvent]: ...


# Writes a committed transaction's events (app.outbox.tables.write_events), given by the
# composition root so persistence does not depend on the outbox.
EventSink = Callable[[AsyncConnection, list[DomainEvent]], Awaitable[None]]


class SqlUnitOfWork:
    def __init__(self, database: Database, event_sink: EventSink) -> None:
        self._database = database
        self._event_sink = event_sink
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._seen: list[EventSource] = []

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("unit of work used outside its 'async with' block")
        return self._connection

    def seen(self, aggregate: EventSource) -> None:
        """Called by repositories for every aggregate they add or load."""
        self._seen.append(aggregate)

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            self._connection = await stack.enter_async_context(self._database.connect())
            self._transaction = await self._connection.begin()
            self._bind_repositories(self._connection)
            self._exit_stack = stack.pop_all()
        return self

    def _bind_repositories(self, connection: AsyncConnection) -> None:
        """Subclasses create their repositories on the connection."""

    async def commit(self) -> None:
        events = [event for aggregate in self._seen for event in aggregate.pull_events()]
        if events:
            await self._event_sink(self.connection, events)
        assert self._transaction is not None
        await self._transaction.commit()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._transaction is not None and self._transaction.is_active:
                await self._transaction.rollback()
        finally:
            stack, self._exit_stack = self._exit_stack, None
            self._connection = None
            self._transaction = None
            self._seen.clear()
            if stack is not None:
                await stack.aclose()  # the connection back to the pool, its permit released
