"""Which database errors mean "the database cannot serve right now" rather than a bug.

A request that meets a lost, restarting or overloaded database, or a full disk, did nothing
wrong and must not be told so with a 500 and a stack trace per request: it gets a 503 (or
507 for a full disk) with `Retry-After`, and the log gets one warning line (app.api.errors).
Everything else stays an unhandled error. The chaos suite (tests/chaos) kills PostgreSQL and
fills the SQLite disk under load to find these.
"""

from __future__ import annotations

from enum import StrEnum

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError


class DatabaseFailure(StrEnum):
    UNAVAILABLE = "unavailable"  # unreachable, restarting, closed the connection, out of connections
    STORAGE_FULL = "storage_full"  # no space left to write


# SQLSTATE classes and codes (PostgreSQL appendix A) of a database that cannot serve now.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P")  # connection exception; shutdown, crash, starting up
_UNAVAILABLE_SQLSTATES = frozenset({"53300", "25006"})  # too many connections; read-only (a replica)
_STORAGE_FULL_SQLSTATES = frozenset({"53100"})  # disk full
# SQLite primary result codes: BUSY, LOCKED, READONLY, IOERR, CANTOPEN; FULL.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 8, 10, 14})
_SQLITE_FULL = 13


def database_failure(exc: BaseException) -> DatabaseFailure | None:
    """The failure `exc` (or an error it wraps) stands for, or None when it is not one of these."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        failure = _classify(node)
        if failure is not None:
            return failure
        wrapped = getattr(node, "orig", None)  # SQLAlchemy's DBAPIError -> the driver's error
        node = wrapped if isinstance(wrapped, BaseException) else node.__cause__ or node.__context__
    return None


def _classify(exc: BaseException) -> DatabaseFailure | None:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return DatabaseFailure.UNAVAILABLE
    if isinstance(exc, PoolTimeoutError | OSError):  # no pooled connection in time; refused, reset, timed out
        return DatabaseFailure.UNAVAILABLE
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return DatabaseFailure.UNAVAILABLE
    # A pooled connection still busy with an operation that an outage interrupted (seen right after
    # a PostgreSQL restart under load): this request cannot use it, and it is discarded
    # (Database.driver_connection invalidates a connection on any non-server error).
    if isinstance(exc, asyncpg.InternalClientError) and "another operation" in str(exc):
        return DatabaseFailure.UNAVAILABLE
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in _STORAGE_FULL_SQLSTATES:
            return DatabaseFailure.STORAGE_FULL
        if sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return DatabaseFailure.UNAVAILABLE
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF  # extended codes carry the primary code in the low byte
        if primary == _SQLITE_FULL:
            return DatabaseFailure.STORAGE_FULL
        if primary in _SQLITE_UNAVAILABLE:
            return DatabaseFailure.UNAVAILABLE
    return None
