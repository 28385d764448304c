"""Schemathesis hooks for the kit's fuzz runs (SCHEMATHESIS_HOOKS=tests.security.fuzz_hooks).

One check of our own: a refused request (4xx) leaves the database exactly as it was. Around
every call the database's fingerprint (row counts, latest update times, token versions) is
taken, and the check compares the two. FUZZ_DATABASE_URL names the service's database.

One adjustment, in the stateful phase only: a valid `Idempotency-Key` on POST
/api/v1/projects gets a suffix unique to the call. A replay returns the first 201 even after
that project was deleted (security review I8, by design: the Stripe semantics, tested in
service/tests/api/test_security_review.py::test_i8_*), which
schemathesis' "created resource not found" check would report as a new creation that vanished
(it found exactly that sequence: POST with key K, DELETE, POST with key K, DELETE -> 404).
Invalid keys are sent as generated (422).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
import uuid
from concurrent.futures import Future
from typing import Any

import asyncpg
import schemathesis

FINGERPRINT_SQL = (
    "SELECT (SELECT count(*) FROM users), (SELECT max(updated_at) FROM users),"
    " (SELECT sum(token_version) FROM users), (SELECT count(*) FROM projects),"
    " (SELECT max(updated_at) FROM projects), (SELECT count(*) FROM idempotency_keys),"
    " (SELECT count(*) FROM outbox_events)"
)


class _Database:
    """A fingerprint reader for the service's SQLite file or PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._sqlite_path = url.split(":///", 1)[1] if url.startswith("sqlite") else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: Any = None

    def fingerprint(self) -> tuple[object, ...]:
        if self._sqlite_path is not None:
            with sqlite3.connect(self._sqlite_path, timeout=10) as conn:
                return tuple(conn.execute(FINGERPRINT_SQL).fetchone())
        future: Future[tuple[object, ...]] = asyncio.run_coroutine_threadsafe(self._pg(), self._pg_loop())
        return future.result(timeout=30)

    def _pg_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            threading.Thread(target=self._loop.run_forever, daemon=True).start()
        return self._loop

    async def _pg(self) -> tuple[object, ...]:
        if self._connection is None:
            self._connection = await asyncpg.connect(self._url.replace("postgresql+asyncpg", "postgresql"))
        return tuple(await self._connection.fetchrow(FINGERPRINT_SQL))


_database = _Database(os.environ["FUZZ_DATABASE_URL"]) if "FUZZ_DATABASE_URL" in os.environ else None
# id(case) -> (before, after): taken around the real call, compared by the check.
_snapshots: dict[int, tuple[tuple[object, ...], tuple[object, ...] | None]] = {}
_lock = threading.Lock()


_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def _in_stateful_phase(case: Any) -> bool:
    # Only stateful sequences create, delete and replay; other phases' cases stay exactly as
    # generated (editing them makes schemathesis re-derive what a negative case is missing).
    meta = getattr(case, "_meta", None)
    return meta is not None and str(meta.phase.name) == "stateful"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    key = (case.headers or {}).get("Idempotency-Key")
    if (
        _in_stateful_phase(case)
        and case.method.upper() == "POST"
        and isinstance(key, str)
        and _VALID_KEY.match(key)
    ):
        case.headers["Idempotency-Key"] = f"{key}-{uuid.uuid4().hex[:16]}"
    if _database is not None:
        with _lock:
            _snapshots[id(case)] = (_database.fingerprint(), None)


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    if _database is not None:
        with _lock:
            before, _ = _snapshots.get(id(case), ((), None))
            _snapshots[id(case)] = (before, _database.fingerprint())


@schemathesis.check
def refused_requests_change_nothing(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx answer must leave the database as it was (no half-done write)."""
    if not 400 <= response.status_code < 500:
        return None
    with _lock:
        before, after = _snapshots.get(id(case), ((), None))
    if before and after is not None and before != after:
        raise AssertionError(f"{response.status_code} answer, yet the database changed: {before} -> {after}")
    return None
