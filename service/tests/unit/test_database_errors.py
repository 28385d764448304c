"""Which database errors mean "cannot serve now" (503/507 with Retry-After) rather than a bug (500)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.persistence.failures import DatabaseFailure, database_failure


def _sqlite_error(tmp_path: Path, statement: str, *, read_only: bool) -> sqlite3.Error:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")
        conn.execute("INSERT OR IGNORE INTO t VALUES (1)")
    conn = sqlite3.connect(f"file:{path}?mode=ro" if read_only else path, uri=read_only)
    try:
        conn.execute(statement)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ConnectionRefusedError(111, "Connection refused"), DatabaseFailure.UNAVAILABLE),
        (TimeoutError(), DatabaseFailure.UNAVAILABLE),
        (PoolTimeoutError("QueuePool limit reached"), DatabaseFailure.UNAVAILABLE),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed mid-operation"), DatabaseFailure.UNAVAILABLE),
        (
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            DatabaseFailure.UNAVAILABLE,
        ),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), DatabaseFailure.UNAVAILABLE),
        (asyncpg.exceptions.TooManyConnectionsError("too many clients"), DatabaseFailure.UNAVAILABLE),
        (
            asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"),
            DatabaseFailure.UNAVAILABLE,
        ),
        (asyncpg.InterfaceError("connection is closed"), DatabaseFailure.UNAVAILABLE),
        (
            asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
            DatabaseFailure.UNAVAILABLE,
        ),
        (asyncpg.exceptions.DiskFullError("could not extend file"), DatabaseFailure.STORAGE_FULL),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), None),
        (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), None),
        (ValueError("a bug"), None),
    ],
)
def test_driver_errors(error: BaseException, expected: DatabaseFailure | None) -> None:
    assert database_failure(error) is expected


def test_sqlalchemy_wrapped_errors_are_judged_by_what_they_wrap() -> None:
    lost = DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True)
    assert database_failure(lost) is DatabaseFailure.UNAVAILABLE
    full = DBAPIError("INSERT", None, asyncpg.exceptions.DiskFullError("no space"))
    assert database_failure(full) is DatabaseFailure.STORAGE_FULL
    constraint = IntegrityError("INSERT", None, asyncpg.exceptions.ForeignKeyViolationError("fk"))
    assert database_failure(constraint) is None


def test_a_cause_chain_is_followed() -> None:
    outer = RuntimeError("while committing")
    outer.__cause__ = ConnectionResetError(104, "reset")
    assert database_failure(outer) is DatabaseFailure.UNAVAILABLE


def test_real_sqlite_errors(tmp_path: Path) -> None:
    read_only = _sqlite_error(tmp_path, "INSERT INTO t VALUES (2)", read_only=True)
    assert database_failure(read_only) is DatabaseFailure.UNAVAILABLE
    constraint = _sqlite_error(tmp_path, "INSERT INTO t VALUES (1)", read_only=False)
    assert database_failure(constraint) is None
