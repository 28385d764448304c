"""Rolling back past a migration (R1/K1), and DDL that waits for locks only so long.

Release N+1 is this release's migrations plus one more revision (written to a temporary
version directory); release N is the code under test. After N+1 migrated, N's migration step
and N's app must start against that database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from app.migrate import MigrationError, alembic_config, downgrade, main, upgrade
from service.tests.builders import DEFAULT_PASSWORD, make_settings, unique_email
from service.tests.system.service_process import service_process
from testsupport.app_process import smoke
from testsupport.database_roles import RoleUrls, create_database_with_roles
from testsupport.servers import PostgresServer, pg_tool, stop_process, wait_until

NEXT_REVISION = "next_release_0001"
# An expand step: a nullable column release N never reads, on the busiest table.
NEXT_RELEASE_REVISION = '''"""add users.time_zone (release N+1)"""
import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("time_zone", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "time_zone")
'''


def release_head() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def next_release(tmp_path: Path) -> Path:
    """Version directory holding release N+1's extra revision, on top of this release's head."""
    versions = tmp_path / "next_release_versions"
    versions.mkdir()
    (versions / f"{NEXT_REVISION}_add_users_time_zone.py").write_text(
        NEXT_RELEASE_REVISION.format(revision=NEXT_REVISION, down_revision=release_head())
    )
    return versions


@pytest.fixture
def database(postgres: PostgresServer) -> RoleUrls:
    return create_database_with_roles(postgres, f"rollback_{uuid.uuid4().hex[:8]}")


def migrate_cli(urls: RoleUrls) -> subprocess.CompletedProcess[str]:
    """Release N's migration step exactly as the init container runs it."""
    return subprocess.run(
        [sys.executable, "-m", "app.migrate"],
        env={**os.environ, "DATABASE_URL": urls.app, "MIGRATION_DATABASE_URL": urls.migrator},
        capture_output=True,
        text=True,
        timeout=120,
    )


def migrate_main(monkeypatch: pytest.MonkeyPatch, urls: RoleUrls, *args: str, **env: str) -> int:
    """`python -m app.migrate` in this process (faster than a child; the CLI path is the same)."""
    monkeypatch.setenv("DATABASE_URL", urls.app)
    monkeypatch.setenv("MIGRATION_DATABASE_URL", urls.migrator)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return main(list(args))


def columns(server: PostgresServer, database: str, table: str) -> set[str]:
    out = server.psql(
        f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'", database=database
    )
    return set(out.split())


def test_release_n_starts_after_release_n_plus_1_migrated(
    postgres: PostgresServer,
    database: RoleUrls,
    next_release: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    migrator = make_settings(database.app, migration_database_url=database.migrator, version="1.1.0")
    outcome = upgrade(migrator, version_locations=[next_release])
    assert (outcome.state, outcome.after) == ("upgraded", (NEXT_REVISION,))
    assert "time_zone" in columns(postgres, database.database, "users")

    # Rollback: release N's init container runs against N+1's schema, and succeeds.
    result = migrate_cli(database)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"database ahead of this release: at {NEXT_REVISION}")
    assert release_head() in result.stdout
    assert migrate_main(monkeypatch, database, "status") == 0
    assert "state: ahead of this release" in capsys.readouterr().out
    # Nothing was undone: migrations never roll back with the code.
    assert "time_zone" in columns(postgres, database.database, "users")

    # Release N's app serves on that schema with the DML-only role: ready, register, log in, list, write.
    with service_process(database.app, tmp_path) as app:
        email = unique_email("rollback")
        registered = httpx.post(
            f"{app.base_url}/api/v1/auth/register",
            json={"email": email, "password": DEFAULT_PASSWORD, "name": "Rollback"},
        )
        assert registered.status_code == 201, registered.text
        assert smoke(app.base_url, email, DEFAULT_PASSWORD).projects_listed == 0

    # Rolling forward again is a no-op for N+1.
    assert upgrade(migrator, version_locations=[next_release]).state == "current"


def test_release_n_refuses_a_database_that_diverged(
    postgres: PostgresServer,
    database: RoleUrls,
    next_release: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upgrade(
        make_settings(database.app, migration_database_url=database.migrator),
        version_locations=[next_release],
    )
    # A database migrated by another line of history: one of release N's revisions is not applied.
    postgres.psql(
        f"DELETE FROM schema_migration_history WHERE revision = '{release_head()}'", database.database
    )
    assert migrate_main(monkeypatch, database) == 1
    err = capsys.readouterr().err
    assert err.startswith("migration failed: MigrationError: ") and "schema diverged from this release" in err
    assert len(err.strip().splitlines()) == 1


def test_release_n_does_not_downgrade_a_database_it_does_not_know(
    database: RoleUrls, next_release: Path
) -> None:
    settings = make_settings(database.app, migration_database_url=database.migrator)
    upgrade(settings, version_locations=[next_release])
    with pytest.raises(MigrationError, match="refusing to move a database that is ahead"):
        downgrade(settings, "base")
    # Release N+1 knows its revision and can take it back; the history follows.
    assert downgrade(settings, release_head(), version_locations=[next_release]).state == "downgraded"
    assert upgrade(settings).state == "current"


def test_history_records_every_applied_revision_and_backfills(
    postgres: PostgresServer, database: RoleUrls
) -> None:
    settings = make_settings(database.app, migration_database_url=database.migrator, version="2.0.0")
    upgrade(settings)
    every = {
        rev.revision for rev in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()
    }
    recorded = postgres.psql(
        "SELECT revision || ' ' || release FROM schema_migration_history", database.database
    )
    assert set(recorded.splitlines()) == {f"{rev} 2.0.0" for rev in every}
    # A database migrated before the history existed: the next run records what is applied.
    postgres.psql("DROP TABLE schema_migration_history", database.database)
    assert upgrade(settings).state == "current"
    assert len(
        postgres.psql("SELECT revision FROM schema_migration_history", database.database).split()
    ) == len(every)


def test_production_refuses_to_migrate_with_the_app_role(
    database: RoleUrls, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MIGRATION_DATABASE_URL", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("DATABASE_URL", database.app)
    monkeypatch.setenv("JWT_SECRET", "x" * 48 + "-not-a-known-weak-one")
    assert main([]) == 1
    assert "MIGRATION_DATABASE_URL is required when ENVIRONMENT=prod" in capsys.readouterr().err


def test_status_reports_a_current_schema(
    database: RoleUrls, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrate_main(monkeypatch, database, "status") == 0
    assert "state: empty (nothing applied)" in capsys.readouterr().out
    assert migrate_main(monkeypatch, database) == 0
    assert capsys.readouterr().out.startswith("migrations upgraded: empty -> ")
    assert migrate_main(monkeypatch, database, "status") == 0
    out = capsys.readouterr().out
    assert f"release head: {release_head()}  state: current" in out
    assert f"applied {release_head()} (by release " in out


# --- lock_timeout and retries, against a lock really held by another connection -------------------

LockHolder = Callable[[float], subprocess.Popen[bytes]]


@pytest.fixture
def lock_holder(postgres: PostgresServer, database: RoleUrls) -> Iterator[LockHolder]:
    holders: list[subprocess.Popen[bytes]] = []

    def hold(seconds: float) -> subprocess.Popen[bytes]:
        """Another session reads `users` inside a transaction for `seconds` (ACCESS SHARE lock)."""
        sql = f"BEGIN; LOCK TABLE users IN ACCESS SHARE MODE; SELECT pg_sleep({seconds}); COMMIT;"
        argv = ["-h", postgres.host, "-p", str(postgres.port), "-U", "postgres", "-d", database.database]
        holder = subprocess.Popen(
            [pg_tool("psql"), *argv, "-qc", sql],
            stdout=subprocess.DEVNULL,
        )
        holders.append(holder)
        granted = (
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'users' AND l.mode = 'AccessShareLock' AND l.granted"
        )
        wait_until(lambda: postgres.psql(granted, database.database).strip() == "1", 10, "lock holder")
        return holder

    yield hold
    for holder in holders:
        stop_process(holder, signum=signal.SIGKILL)
    # The backend sleeps on after its client died: end it, or the server's shutdown waits for it.
    postgres.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' "
        "AND pid <> pg_backend_pid()",
        database.database,
    )


def test_ddl_behind_a_long_transaction_times_out_and_is_retried(
    database: RoleUrls,
    next_release: Path,
    lock_holder: callable,
    postgres: PostgresServer,  # type: ignore[valid-type]
) -> None:
    settings = make_settings(
        database.app,
        migration_database_url=database.migrator,
        migration_lock_timeout_ms=200,
        migration_lock_attempts=20,
        migration_retry_delay_seconds=0.1,
    )
    upgrade(settings)
    lock_holder(2)
    started = time.monotonic()
    outcome = upgrade(settings, version_locations=[next_release])
    assert outcome.state == "upgraded"
    assert outcome.attempts >= 2  # the first attempts hit lock_timeout and rolled back
    assert time.monotonic() - started >= 1.0
    assert "time_zone" in columns(postgres, database.database, "users")


def test_a_lock_that_is_never_released_fails_cleanly_and_changes_nothing(
    database: RoleUrls,
    next_release: Path,
    lock_holder: callable,
    postgres: PostgresServer,  # type: ignore[valid-type]
) -> None:
    settings = make_settings(
        database.app,
        migration_database_url=database.migrator,
        migration_lock_timeout_ms=100,
        migration_lock_attempts=3,
        migration_retry_delay_seconds=0.05,
    )
    upgrade(settings)
    lock_holder(60)
    with pytest.raises(MigrationError, match="lock timeout \\(100 ms\\) on every one of 3 attempts"):
        upgrade(settings, version_locations=[next_release])
    assert "time_zone" not in columns(postgres, database.database, "users")
    head = postgres.psql("SELECT version_num FROM alembic_version", database.database).strip()
    assert head == release_head()


def test_a_statement_over_the_statement_timeout_fails_without_retry(
    database: RoleUrls, tmp_path: Path, postgres: PostgresServer
) -> None:
    settings = make_settings(
        database.app,
        migration_database_url=database.migrator,
        migration_statement_timeout_ms=300,
        migration_lock_attempts=3,
    )
    upgrade(settings)
    slow = tmp_path / "slow_versions"
    slow.mkdir()
    add_column = 'op.add_column("users", sa.Column("time_zone", sa.String(64), nullable=True))'
    body = NEXT_RELEASE_REVISION.format(revision=NEXT_REVISION, down_revision=release_head()).replace(
        add_column, add_column + '\n    op.execute("SELECT pg_sleep(2)")'
    )
    (slow / f"{NEXT_REVISION}_slow.py").write_text(body)
    started = time.monotonic()
    with pytest.raises(DBAPIError, match="canceling statement due to statement timeout"):
        upgrade(settings, version_locations=[slow])
    assert time.monotonic() - started < 10  # one attempt: a slow migration is not retried
    assert "time_zone" not in columns(postgres, database.database, "users")  # rolled back as a whole
