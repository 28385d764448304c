"""Engine, metadata and column types shared by every context's tables."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import asyncpg
from sqlalchemy import DateTime, MetaData, Select, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from app.core.settings import Settings

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
    _checkout_gates[engine.sync_engine] = asyncio.Semaphore(settings.db_pool_size + settings.db_max_overflow)
    return engine


# Requests queue for a pooled connection here, first come first served. SQLAlchemy's async
# pool queue lets a newcomer take a connection that was just handed back before the waiter it
# was meant for runs again, and that waiter goes to the back of the line: under saturation a
# few requests starved until pool_timeout and failed with 500 (seen in the benchmark's
# in-process driver). The semaphore never lets a newcomer pass a waiter, and never admits
# more units of work than the pool holds, so the pool itself does not make them wait.
_checkout_gates: WeakKeyDictionary[Engine, asyncio.Semaphore] = WeakKeyDictionary()


def checkout_gate(engine: AsyncEngine) -> asyncio.Semaphore | None:
    """The engine's fair checkout queue; None for pools without a size limit (SQLite)."""
    return _checkout_gates.get(engine.sync_engine)


# Who wants to know how long units of work waited for a connection (the API's metrics).
_checkout_wait_observers: WeakKeyDictionary[Engine, Callable[[float], None]] = WeakKeyDictionary()


def observe_checkout_wait(engine: AsyncEngine, observer: Callable[[float], None]) -> None:
    """Call ``observer(seconds)`` with every unit of work's wait for its connection."""
    _checkout_wait_observers[engine.sync_engine] = observer


def checkout_wait_observer(engine: AsyncEngine) -> Callable[[float], None] | None:
    return _checkout_wait_observers.get(engine.sync_engine)


@dataclass(frozen=True)
class _DriverStatement:
    sql: str
    # (name, value bound in the statement itself, bind processor), in $1, $2... order
    parameters: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    row_processors: tuple[Callable[[Any], Any] | None, ...] | None  # None: rows as they come


_driver_statements: dict[tuple[Select[Any], str], _DriverStatement] = {}


def _driver_statement(statement: Select[Any], dialect: Dialect) -> _DriverStatement:
    key = (statement, dialect.name)
    if key not in _driver_statements:
        compiled = statement.compile(dialect=dialect)
        parameters = tuple(
            (name, bind.effective_value, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name in compiled.positiontup or ()
            for bind in (compiled.binds[name],)
        )
        processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        _driver_statements[key] = _DriverStatement(
            compiled.string, parameters, processors if any(processors) else None
        )
    return _driver_statements[key]


async def fetch_rows(
    connection: AsyncConnection, statement: Select[Any], values: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """Every row of a SELECT, as tuples (positional, in the statement's column order).

    On an autocommit asyncpg connection (a read-only unit of work) the statement, compiled
    once with its types' bind and result processing, goes straight to the driver, whose
    prepared-statement cache it then hits: SQLAlchemy's execution and Result layers cost
    ~135 us of CPU on a 20-row list page, more than the driver's own work. In a transaction,
    or on SQLite, it is an ordinary execute.
    """
    if (
        connection.dialect.driver == "asyncpg"
        and connection.sync_connection is not None
        and connection.sync_connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    ):
        compiled = _driver_statement(statement, connection.dialect)
        args = []
        for name, bound, process in compiled.parameters:
            value = values.get(name, bound)
            args.append(process(value) if process else value)
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            rows: Sequence[Sequence[Any]] = await driver.fetch(compiled.sql, *args)
        except Exception as exc:
            # An error from the server (a constraint, statement_timeout) leaves the connection
            # usable; anything else (it closed, the protocol broke, a client timeout) may not:
            # it leaves the pool rather than fail the next request too.
            if driver.is_closed() or not isinstance(exc, asyncpg.PostgresError):
                await connection.invalidate(exc)
            raise
        processors = compiled.row_processors
        if processors is None:
            return rows
        return [
            tuple(
                process(value) if process else value for process, value in zip(processors, row, strict=True)
            )
            for row in rows
        ]
    result: Sequence[Sequence[Any]] = (await connection.execute(statement, values)).all()
    return result
