"""The fuzz runs' own check (a refused request changes nothing) can fail: it sees a real change."""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest


def test_the_database_check_catches_a_write_behind_a_4xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "hooks.db"
    url = f"sqlite+aiosqlite:///{path}"
    with sqlite3.connect(path) as conn:  # the columns the fingerprint reads (no migration run: fast)
        conn.executescript(
            "CREATE TABLE users (id TEXT, email TEXT, name TEXT, password_hash TEXT, role TEXT,"
            " created_at TEXT, updated_at TEXT, token_version INTEGER);"
            "CREATE TABLE projects (id TEXT, updated_at TEXT);"
            "CREATE TABLE idempotency_keys (user_id TEXT);"
            "CREATE TABLE outbox_events (id TEXT);"
        )
    monkeypatch.setenv("FUZZ_DATABASE_URL", url)
    import tests.security.fuzz_hooks as hooks

    hooks = importlib.reload(hooks)
    refused = SimpleNamespace(status_code=422)
    stateful = SimpleNamespace(phase=SimpleNamespace(name="stateful"))
    quiet = SimpleNamespace(method="GET", headers={}, _meta=None)
    noisy = SimpleNamespace(method="POST", headers={"Idempotency-Key": "k-1"}, _meta=stateful)

    hooks.before_call(None, quiet, {})
    hooks.after_call(None, quiet, refused)
    assert hooks.refused_requests_change_nothing(None, refused, quiet) is None

    hooks.before_call(None, noisy, {})
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO users (id, email, name, password_hash, role, created_at, updated_at, token_version)"
            " VALUES ('00000000000000000000000000000001', 'a@b.c', 'n', 'h', 'member',"
            " '2026-01-01', '2026-01-01', 0)"
        )
    hooks.after_call(None, noisy, refused)
    assert noisy.headers["Idempotency-Key"].startswith("k-1-")  # made unique per call
    with pytest.raises(AssertionError, match="database changed"):
        hooks.refused_requests_change_nothing(None, refused, noisy)
    # A successful write is what writes are for.
    assert hooks.refused_requests_change_nothing(None, SimpleNamespace(status_code=201), noisy) is None
