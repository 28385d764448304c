"""Database migrations (`python -m app.migrate [upgrade|status]`): Alembic, safe to roll back past.

- **Own role.** Migrations connect with `MIGRATION_DATABASE_URL` (the migrator role owns the
  schema); the app's `DATABASE_URL` role has DML rights only (`service/sql/bootstrap_roles.sql`).
- **A database ahead of the code is accepted.** Every applied revision is recorded in
  `schema_migration_history`. When the database is at a revision this release does not know
  (a rollback after release N+1 migrated), the step checks that every revision of this release
  is applied and exits 0 without changing anything, so the older pods start. Expand/contract
  (checked by `kit.migration_lint`) keeps release N's code working on N+1's schema.
- **Bounded locks.** On PostgreSQL, after the advisory lock that serialises concurrent runs,
  DDL runs with `lock_timeout` and `statement_timeout`; a lock timeout rolls the attempt back
  and the whole upgrade is retried (`MIGRATION_LOCK_ATTEMPTS` times).

Idempotent: re-running at head changes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from app.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout

# Kept apart from the app's metadata: Alembic's bookkeeping, not a model (autogenerate skips it).
HISTORY_TABLE = "schema_migration_history"
_history_metadata = MetaData()
history = Table(
    HISTORY_TABLE,
    _history_metadata,
    Column("revision", String(64), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("release", String(64), nullable=False),
)
BOOKKEEPING_TABLES = frozenset({"alembic_version", HISTORY_TABLE})

State = Literal["upgraded", "current", "ahead", "downgraded"]


class MigrationError(Exception):
    """The schema cannot be brought to what this release needs; the message says why."""


@dataclass(frozen=True)
class Outcome:
    state: State
    before: tuple[str, ...]
    after: tuple[str, ...]
    code_head: str
    attempts: int = 1

    def describe(self) -> str:
        before = ",".join(self.before) or "empty"
        after = ",".join(self.after) or "empty"
        match self.state:
            case "ahead":
                return (
                    f"database ahead of this release: at {after}, every revision up to this "
                    f"release's head {self.code_head} is applied; nothing to do"
                )
            case "current":
                return f"schema current at {after}"
            case _:
                return f"migrations {self.state}: {before} -> {after}"


@dataclass
class RunOptions:
    """What app.migrate hands to env.py (Config.attributes) and what env.py hands back."""

    release: str
    allow_ahead: bool  # an upgrade; a downgrade refuses a database it does not know
    lock_timeout_ms: int
    statement_timeout_ms: int
    result: dict[str, Any] = field(default_factory=dict)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate filter: the history table is bookkeeping, not a model to compare."""
    return not (type_ == "table" and name == HISTORY_TABLE)


def alembic_config(database_url: str, version_locations: Sequence[Path] = ()) -> Config:
    """Config for this release's revisions; `version_locations` adds directories (tests use it)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if version_locations:
        locations = [MIGRATIONS_DIR / "versions", *version_locations]
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", ":".join(str(p) for p in locations))
    return config


def migration_url(settings: Settings) -> str:
    if settings.migration_database_url:
        return settings.migration_database_url
    if settings.environment.is_production_like:
        raise MigrationError(
            f"MIGRATION_DATABASE_URL is required when ENVIRONMENT={settings.environment.value} "
            "(the app's DATABASE_URL role has no DDL rights)"
        )
    return settings.database_url


def sync_schema(connection: Connection, script: ScriptDirectory, options: RunOptions, run: Any) -> None:
    """Called by env.py inside the migration transaction (after the advisory lock).

    `run` applies the migrations. Records what is applied, or accepts a database ahead of the code.
    """
    context_heads = _current_heads(connection)
    known = {rev.revision for rev in script.walk_revisions()}
    code_head = script.get_current_head() or "base"
    history.create(connection, checkfirst=True)
    unknown = [head for head in context_heads if head not in known]
    options.result.update(before=tuple(context_heads), code_head=code_head)
    if unknown:
        applied = set(connection.scalars(select(history.c.revision)))
        missing = sorted(known - applied)
        if not options.allow_ahead or missing:
            raise MigrationError(
                f"database is at revision {','.join(unknown)}, unknown to this release (head "
                f"{code_head})"
                + (
                    f", and this release's revision(s) {','.join(missing)} are not recorded as applied: "
                    "the schema diverged from this release; restore the matching release or migrate by hand"
                    if missing
                    else "; refusing to move a database that is ahead of the code"
                )
            )
        options.result.update(state="ahead", after=tuple(context_heads))
        return
    run()
    after = _current_heads(connection)
    _record(connection, script, after, options.release)
    if after == context_heads:
        state: State = "current"
    else:
        state = "upgraded" if options.allow_ahead else "downgraded"
    options.result.update(state=state, after=tuple(after))


def _current_heads(connection: Connection) -> list[str]:
    from alembic.migration import MigrationContext

    return sorted(MigrationContext.configure(connection).get_current_heads())


def _record(connection: Connection, script: ScriptDirectory, heads: Sequence[str], release: str) -> None:
    """History = exactly the ancestors of the current heads (upgrades add, downgrades remove)."""
    applied = {rev.revision for rev in script.iterate_revisions(tuple(heads), "base")} if heads else set()
    recorded = set(connection.scalars(select(history.c.revision)))
    if stale := recorded - applied:
        connection.execute(delete(history).where(history.c.revision.in_(stale)))
    if new := applied - recorded:
        connection.execute(insert(history), [{"revision": rev, "release": release} for rev in sorted(new)])


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _run_alembic(
    settings: Settings,
    action: Literal["upgrade", "downgrade"],
    revision: str,
    version_locations: Sequence[Path],
) -> Outcome:
    config = alembic_config(migration_url(settings), version_locations)
    attempts = settings.migration_lock_attempts
    for attempt in range(1, attempts + 1):
        options = RunOptions(
            release=settings.version,
            allow_ahead=action == "upgrade",
            lock_timeout_ms=settings.migration_lock_timeout_ms,
            statement_timeout_ms=settings.migration_statement_timeout_ms,
        )
        config.attributes["app_migrate"] = options
        try:
            getattr(command, action)(config, revision)
        except DBAPIError as exc:
            if _sqlstate(exc) != LOCK_NOT_AVAILABLE:
                raise
            if attempt == attempts:
                raise MigrationError(
                    f"lock timeout ({settings.migration_lock_timeout_ms} ms) on every one of {attempts} "
                    "attempts: a long transaction holds a lock the migration needs (see pg_locks)"
                ) from None
            delay = settings.migration_retry_delay_seconds * attempt
            print(
                f"migration attempt {attempt}/{attempts}: lock timeout after "
                f"{settings.migration_lock_timeout_ms} ms, rolled back; retrying in {delay:.1f} s",
                file=sys.stderr,
            )
            time.sleep(delay)
            continue
        result = options.result
        return Outcome(
            state=result["state"],
            before=result["before"],
            after=result["after"],
            code_head=result["code_head"],
            attempts=attempt,
        )
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def upgrade(settings: Settings, revision: str = "head", version_locations: Sequence[Path] = ()) -> Outcome:
    return _run_alembic(settings, "upgrade", revision, version_locations)


def downgrade(settings: Settings, revision: str, version_locations: Sequence[Path] = ()) -> Outcome:
    return _run_alembic(settings, "downgrade", revision, version_locations)


def status(settings: Settings) -> str:
    """Database revision against this release's head, and the recorded history (read-only)."""
    import asyncio

    from sqlalchemy import inspect
    from sqlalchemy.ext.asyncio import create_async_engine

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    code_head = script.get_current_head() or "base"
    known = {rev.revision for rev in script.walk_revisions()}
    url = settings.migration_database_url or settings.database_url

    def read(connection: Connection) -> tuple[list[str], list[tuple[str, str]]]:
        heads = _current_heads(connection)
        rows: list[tuple[str, str]] = []
        if inspect(connection).has_table(HISTORY_TABLE):
            rows = [(r.revision, r.release) for r in connection.execute(select(history).order_by("revision"))]
        return heads, rows

    async def query() -> tuple[list[str], list[tuple[str, str]]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    heads, rows = asyncio.run(query())
    if not heads:
        state = "empty (nothing applied)"
    elif any(head not in known for head in heads):
        state = "ahead of this release"
    elif code_head in heads:
        state = "current"
    else:
        state = "behind this release (run upgrade)"
    lines = [f"database: {','.join(heads) or 'base'}  release head: {code_head}  state: {state}"]
    lines += [f"  applied {revision} (by release {release})" for revision, release in rows]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.migrate", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("upgrade", help="upgrade to this release's head (the default)")
    commands.add_parser("status", help="print the database's revision against this release's (read-only)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
        if args.command == "status":
            print(status(settings))
        else:
            print(upgrade(settings).describe())
    except ValidationError as exc:
        print(f"migration failed: invalid settings: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    except Exception as exc:  # a one-line reason and a non-zero exit, not a stack trace
        reason = str(exc).splitlines()[0] if str(exc) else ""
        print(f"migration failed: {type(exc).__name__}: {reason}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    run()
