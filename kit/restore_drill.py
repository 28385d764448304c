"""Restore drill: back up a seeded PostgreSQL, restore it on a fresh server, prove the service runs on it.

`python -m kit.restore_drill [--projects N]` (`make restore-drill`, `make restore-drill-large` for 1M):

1. a source server: database `reference_service` with the service's roles
   (service/sql/bootstrap_roles.sql), migrated by the migrator role, seeded
   (users and projects by loadtests.seed, plus outbox events);
2. `pg_dump -Fc` of it, as the nightly backup job would take it;
3. a fresh, empty server (the replacement instance): roles bootstrapped, `pg_restore`,
   roles bootstrapped again (ownership to the migrator, DML to the app);
4. checks: the row count of every table equals the source's; `app.migrate` finds the schema
   current; the service, started on the restored copy with the app's role, answers
   `/health/ready`, a login and a project list.

Prints RTO (restore start until the smoke test passed, in seconds) and RPO (the backup's age
when the restore started, from the archive's own timestamp). Exit 0 when every check passed,
1 with a one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.migrate import upgrade
from app.settings import Settings
from loadtests import accounts
from loadtests.seed import SeedSize, seed
from testsupport.app_process import service_process, smoke
from testsupport.database_roles import RoleUrls, bootstrap_roles
from testsupport.servers import PostgresServer, pg_tool, postgres_server

DATABASE = "reference_service"
SMALL_PROJECTS = 2_000
LARGE_PROJECTS = 1_000_000
# A bound on each pg_dump / pg_restore (the large drill's take minutes): a stuck one fails the drill.
STEP_TIMEOUT_SECONDS = 1800

# Outbox events and idempotency keys too, so every table the service writes is compared.
SQL_OUTBOX = """
INSERT INTO outbox_events (id, event_type, payload, status, attempts, available_at, created_at)
SELECT gen_random_uuid(), 'project.created', json_build_object('n', g),
       (ARRAY['pending', 'delivered', 'dead'])[1 + g % 3], g % 4, now(), now() - make_interval(secs => g)
FROM generate_series(1, {count}) AS g;
INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response_body, created_at, expires_at)
SELECT id, 'drill-' || id, md5(id::text), 201, '{{}}'::json, now(), now() + interval '1 day' FROM users
"""


class DrillError(Exception):
    """A step of the drill failed; the message is the one-line reason."""


@dataclass(frozen=True)
class Backup:
    path: Path
    created_at: datetime  # the archive's own timestamp (pg_dump start, whole seconds)
    seconds: float
    size_bytes: int


@dataclass(frozen=True)
class Report:
    projects: int
    row_counts: dict[str, int]
    backup_seconds: float
    backup_bytes: int
    restore_seconds: float  # pg_restore with the roles bootstrap
    rto_seconds: float  # restore start until the service smoke test passed
    rpo_seconds: float  # the backup's age when the restore started
    projects_listed: int

    def lines(self) -> list[str]:
        counts = ", ".join(f"{table} {count}" for table, count in sorted(self.row_counts.items()))
        return [
            f"restore drill: {sum(self.row_counts.values())} rows ({counts})",
            f"backup: pg_dump -Fc {self.backup_bytes / 1e6:.1f} MB in {self.backup_seconds:.1f} s",
            f"restore: pg_restore + roles in {self.restore_seconds:.1f} s; row counts equal per table; "
            f"schema current; smoke ok (ready, login, {self.projects_listed} projects listed)",
            f"RTO {self.rto_seconds:.1f} s (restore start -> service smoke test passed)",
            f"RPO {self.rpo_seconds:.0f} s (backup age when the restore started)",
        ]


def _run(argv: list[str], what: str) -> str:
    # TZ=UTC: pg_dump stamps the archive in the client's local time zone.
    try:
        result = subprocess.run(  # noqa: S603 - argv built here from pg_tool paths
            argv,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "TZ": "UTC"},
            stdin=subprocess.DEVNULL,
            timeout=STEP_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise DrillError(f"{what} did not finish within {STEP_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}").splitlines()
        raise DrillError(f"{what} failed: {reason[0]}")
    return result.stdout


def _connection(server: PostgresServer, user: str | None = None) -> list[str]:
    return ["-h", server.host, "-p", str(server.port), "-U", user or server.user]


def table_counts(server: PostgresServer, database: str) -> dict[str, int]:
    """Exact row count of every table in the public schema."""
    tables = server.psql(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database
    ).split()
    if not tables:
        return {}
    # Names come from the catalog (pg_tables), quoted as identifiers.
    union = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM public.\"{t}\"" for t in tables)  # noqa: S608
    rows = server.psql(union, database).splitlines()
    return {name: int(count) for name, count in (row.split("|") for row in rows)}


def prepare_source(server: PostgresServer, projects: int) -> RoleUrls:
    server.psql(f'CREATE DATABASE "{DATABASE}"')
    urls = bootstrap_roles(server, DATABASE)
    upgrade(_settings(urls))
    owners = max(1, min(1_000, projects // 100))
    asyncio.run(seed(urls.app, SeedSize(projects=projects, owners=owners, managers=1)))
    server.psql(SQL_OUTBOX.format(count=max(1, projects // 10)), DATABASE)
    return urls


def take_backup(server: PostgresServer, database: str, path: Path) -> Backup:
    started = time.perf_counter()
    _run([pg_tool("pg_dump"), *_connection(server), "-d", database, "-Fc", "-f", str(path)], "pg_dump")
    seconds = time.perf_counter() - started
    return Backup(path, archive_created_at(path), seconds, path.stat().st_size)


def archive_created_at(path: Path) -> datetime:
    """The dump's start time from the archive header (`; Archive created at 2026-12-02 05:32:49 UTC`)."""
    for line in _run([pg_tool("pg_restore"), "-l", str(path)], "reading the backup").splitlines():
        if line.startswith("; Archive created at ") and line.endswith(" UTC"):
            stamp = line.removeprefix("; Archive created at ").removesuffix(" UTC")
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    raise DrillError(f"{path.name}: no 'Archive created at' in the archive header")


def restore_backup(server: PostgresServer, backup: Path) -> RoleUrls:
    """Restore into a new database `reference_service` on `server` (an empty replacement instance)."""
    server.psql(f'CREATE DATABASE "{DATABASE}"')
    bootstrap_roles(server, DATABASE)  # the roles must exist before the service connects
    options = ["-d", DATABASE, "--exit-on-error", "--no-owner", "--no-acl", "--jobs", "2"]
    _run([pg_tool("pg_restore"), *_connection(server), *options, str(backup)], "pg_restore")
    return bootstrap_roles(server, DATABASE)  # ownership to the migrator, DML rights to the app


def _settings(urls: RoleUrls) -> Settings:
    return Settings(
        environment="test",
        database_url=urls.app,
        migration_database_url=urls.migrator,
    )


@contextlib.contextmanager
def _servers() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    with postgres_server() as source, postgres_server() as replacement:
        yield source, replacement


def run_drill(projects: int, workdir: Path) -> Report:
    if projects < 1:
        raise DrillError("--projects must be at least 1")
    with _servers() as (source, replacement):
        prepare_source(source, projects)
        expected = table_counts(source, DATABASE)
        backup = take_backup(source, DATABASE, workdir / "reference_service.dump")

        restore_started = time.perf_counter()
        rpo = (datetime.now(UTC) - backup.created_at).total_seconds()
        urls = restore_backup(replacement, backup.path)
        restore_seconds = time.perf_counter() - restore_started
        restored = table_counts(replacement, DATABASE)
        if restored != expected:
            differences = {t: (expected.get(t), restored.get(t)) for t in expected.keys() | restored.keys()}
            wrong = {t: d for t, d in differences.items() if d[0] != d[1]}
            raise DrillError(f"row counts differ after restore (table: source, restored): {wrong}")
        outcome = upgrade(_settings(urls))
        if outcome.state != "current":
            raise DrillError(f"restored schema is not current: migrate says {outcome.describe()}")
        try:
            with service_process(urls.app, workdir, jwt_secret=secrets.token_hex(32)) as app:
                result = smoke(app.base_url, accounts.owner_email(0), accounts.password())
        except (AssertionError, RuntimeError, TimeoutError) as exc:
            lines = str(exc).strip().splitlines()
            last = f" (last log line: {lines[-1][:300]})" if len(lines) > 1 else ""
            raise DrillError(f"service smoke test on the restored copy failed: {lines[0]}{last}") from None
        rto = time.perf_counter() - restore_started
        if result.projects_listed < 1:
            raise DrillError("service smoke test: the seeded owner sees no projects in the restored copy")
    return Report(
        projects=projects,
        row_counts=expected,
        backup_seconds=backup.seconds,
        backup_bytes=backup.size_bytes,
        restore_seconds=restore_seconds,
        rto_seconds=rto,
        rpo_seconds=rpo,
        projects_listed=result.projects_listed,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.restore_drill", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--projects", type=int, default=SMALL_PROJECTS, help="projects to seed (1M: the large drill)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--keep", type=Path, help="keep the backup and the service log in this directory")
    args = parser.parse_args(argv)
    try:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            report = run_drill(args.projects, args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="restore-drill-") as workdir:
                report = run_drill(args.projects, Path(workdir))
    except (DrillError, OSError) as exc:
        print(f"restore drill failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(report)))
    else:
        print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
