"""The database: metadata and column types shared by every context's tables, the engine, and
the `Database` object the container owns (engine plus a fair queue for its connections)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

from app.settings import Settings

# Deterministic constraint names, so Alembic autogenerate and downgrades are stable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text: store them naive, in one fixed format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.driver == "asyncpg":
            return None  # asyncpg decodes timestamptz as aware UTC datetimes: nothing to do per row
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if settings.is_sqlite:
        in_memory = ":memory:" in url or url.rstrip("/").endswith("sqlite+aiosqlite:")
        engine = create_async_engine(
            url,
            hide_parameters=True,
            connect_args={"timeout": settings.db_pool_timeout_seconds},
            # An in-memory database lives in one connection: share it.
            **({"poolclass": StaticPool} if in_memory else {}),
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # The sqlite3 driver's implicit transactions break SAVEPOINTs: let SQLAlchemy
            # emit BEGIN itself (the recipe from SQLAlchemy's SQLite dialect docs).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    engine = create_async_engine(
        url,
        # DB_ECHO is honoured through the logging config (JSON lines, not SQLAlchemy's own
        # handler); bound parameters (password hashes, emails) never reach a log line or a
        # logged exception.
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        # No pool_pre_ping: it costs a database round trip on every checkout (the list
        # endpoint's busiest syscall in py-spy). A connection that died is invalidated when
        # its statement fails (asyncpg raises, SQLAlchemy discards it from the pool), so at
        # most the requests in flight on it fail, as they would during the outage anyway;
        # pool_recycle retires connections before server/proxy idle limits cut them, and
        # readiness (/health/ready) reports database health from its own query.
        pool_recycle=1800,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            # Client-side bound too: statement_timeout cannot fire when the server or the
            # network is gone, so a dead peer would otherwise hang the request.
            "command_timeout": settings.db_statement_timeout_ms / 1000 + 1
            if settings.db_statement_timeout_ms
            else None,
            # Server-side guard: no statement may hold a connection longer than this.
            "server_settings": {
                "statement_timeout": str(settings.db_statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(settings.db_statement_timeout_ms * 2),
                "application_name": settings.service_name,
            },
        },
    )
    return engine


class Database:
    """The process's database: its engine and the fair queue for its pooled connections.

    Requests queue for a connection here, first come first served. SQLAlchemy's async pool
    lets a newcomer take a connection that was just handed back before the waiter it was
    meant for runs again, and that waiter goes to the back of the line: under saturation a
    few requests starved until pool_timeout and failed with 500 (seen in the benchmark). The
    semaphore never lets a newcomer pass a waiter, and never admits more units of work than
    the pool holds, so the pool itself does not make them wait. SQLite has no pool limit.
    """

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.is_postgresql = self.engine.dialect.name == "postgresql"
        self._gate = (
            asyncio.Semaphore(settings.db_pool_size + settings.db_max_overflow)
            if self.is_postgresql
            else None
        )
        self._observe_wait: Callable[[float], None] | None = None

    def observe_checkout_wait(self, observer: Callable[[float], None]) -> None:
        """Call ``observer(seconds)`` with every wait for a connection (permit and pool checkout)."""
        self._observe_wait = observer

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection, in turn; given back (and its permit released) on the way out."""
        async with self._turn() as started, self.engine.connect() as connection:
            self._waited(started)
            yield connection

    @contextlib.asynccontextmanager
    async def driver_connection(self) -> AsyncIterator[Any]:
        """The pooled driver connection itself (asyncpg's), in turn, for the read model.

        No SQLAlchemy Connection around it, no transaction: one statement runs on its own.
        Checking it out and back costs ~40 us of CPU less than `connect()` (86 vs 127 us per
        checkout and SELECT 1, measured with process_time over 5,000 rounds), a tenth of a list
        request. When the statement fails other than with a server error, the connection may
        be broken (closed, mid-protocol, a client timeout): it leaves the pool instead of
        failing the next request too.
        """
        async with self._turn() as started:
            pooled = await self.engine.raw_connection()
            self._waited(started)
            try:
                yield pooled.driver_connection
            except Exception as exc:
                driver = pooled.driver_connection
                if driver is None or driver.is_closed() or not isinstance(exc, asyncpg.PostgresError):
                    await greenlet_spawn(pooled.invalidate, exc)
                raise
            finally:
                await greenlet_spawn(pooled.close)  # back to the pool (asyncpg needs the greenlet)

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[float]:
        started = time.perf_counter()
        if self._gate is not None:
            await self._gate.acquire()
        try:
            yield started
        finally:
            if self._gate is not None:
                self._gate.release()

    def _waited(self, started: float) -> None:
        if self._observe_wait is not None:
            self._observe_wait(time.perf_counter() - started)

    async def dispose(self) -> None:
        await self.engine.dispose()
