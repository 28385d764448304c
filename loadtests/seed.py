"""Seed load-test data in bulk: owners, managers and their projects, with one SQL statement each.

``python -m loadtests.seed --database-url postgresql+asyncpg://... --projects 100000 --owners 1000``

Run after ``python -m app.migrate``. Idempotent: earlier load-test accounts (``*@loadtest.example.com``)
and their projects are removed first; nothing else in the database is touched, so a staging or
preview database can be seeded the same way. Every seeded account shares one password hash,
computed once with the service's own argon2id hasher, so logins cost what real ones do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from loadtests import accounts

SQL_DELETE = "DELETE FROM users WHERE email LIKE '%@' || $1"  # projects go with them (ON DELETE CASCADE)

SQL_USERS = """
INSERT INTO users (id, email, name, password_hash, role, created_at, updated_at)
SELECT gen_random_uuid(), format($1, lpad(i::text, $2, '0'), $3::text), format('Load %s %s', $4::text, i),
       $5, $4, now(), now()
FROM generate_series(0, $6 - 1) AS i
"""

# Owners in email order, so owner-00007 is element 8; creation times one second apart.
SQL_PROJECTS = """
WITH owner AS (
    SELECT array_agg(id ORDER BY email) AS ids FROM users WHERE email LIKE 'owner-%@' || $1
)
INSERT INTO projects (id, name, description, type, status, owner_id, created_at, updated_at)
SELECT gen_random_uuid(), 'Project ' || g, 'Seeded for the load test',
       (ARRAY['internal', 'client', 'research'])[1 + g % 3],
       (ARRAY['pending', 'active', 'archived'])[1 + (g / 3) % 3],
       owner.ids[1 + g % cardinality(owner.ids)],
       now() - make_interval(secs => g), now() - make_interval(secs => g)
FROM generate_series(0, $2 - 1) AS g, owner
"""


# For bulk loads (``rebuild_indexes``): the statements that drop the projects table's indexes,
# primary key and foreign key, and those that rebuild them from their own definitions (the
# migrations' schema, whatever it is now). One sorted build per index and one join for the
# foreign key cost far less than maintaining them row by row over millions of inserts.
SQL_KEYS = """
SELECT format('ALTER TABLE projects DROP CONSTRAINT %I', conname) AS drop,
       format('ALTER TABLE projects ADD CONSTRAINT %I %s', conname, pg_get_constraintdef(oid)) AS build
FROM pg_constraint WHERE conrelid = 'projects'::regclass AND contype IN ('p', 'f')
ORDER BY contype DESC
"""
SQL_INDEXES = """
SELECT format('DROP INDEX %I', indexname) AS drop, indexdef AS build FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = 'projects'
  AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'projects'::regclass)
"""


@dataclass(frozen=True)
class SeedSize:
    projects: int = 100_000
    owners: int = 1_000
    managers: int = 10


def password_hash() -> str:
    """One hash of the load-test password, by the service's hasher (same parameters as production)."""
    from app.identity.infrastructure.passwords import owasp_argon2id

    return owasp_argon2id().hash(accounts.password())


def asyncpg_dsn(database_url: str) -> str:
    """``postgresql+asyncpg://...`` (SQLAlchemy form) -> ``postgresql://...`` (asyncpg form)."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or not scheme.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {database_url.split('@')[-1]!r}")
    return f"postgresql://{rest}"


@contextlib.asynccontextmanager
async def _indexes_rebuilt_after(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """The block runs with projects' indexes and keys dropped; they are rebuilt after it."""
    keys = await connection.fetch(SQL_KEYS)  # primary key first, so it is dropped last
    indexes = await connection.fetch(SQL_INDEXES)
    for row in [*indexes, *reversed(keys)]:
        await connection.execute(row["drop"])
    yield
    await connection.execute("SET LOCAL maintenance_work_mem = '512MB'")
    for row in [*keys, *indexes]:
        await connection.execute(row["build"])


async def seed(
    database_url: str, size: SeedSize, hashed: str | None = None, *, rebuild_indexes: bool = False
) -> float:
    """Replace the load-test data; returns the seconds it took.

    ``rebuild_indexes``: drop the projects table's indexes and keys for the insert and rebuild
    them after it (for millions of rows into a database of its own: the table is locked and
    unindexed meanwhile)."""
    if min(size.projects, size.owners, size.managers) < 1:
        raise ValueError("projects, owners and managers must each be at least 1")
    started = time.perf_counter()
    hashed = hashed or password_hash()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with connection.transaction():
            await connection.execute(SQL_DELETE, accounts.EMAIL_DOMAIN)
            await connection.execute(
                SQL_USERS, "owner-%s@%s", 5, accounts.EMAIL_DOMAIN, "member", hashed, size.owners
            )
            await connection.execute(
                SQL_USERS, "manager-%s@%s", 3, accounts.EMAIL_DOMAIN, "manager", hashed, size.managers
            )
            async with _indexes_rebuilt_after(connection) if rebuild_indexes else contextlib.nullcontext():
                await connection.execute(SQL_PROJECTS, accounts.EMAIL_DOMAIN, size.projects)
        await connection.execute("ANALYZE users")
        await connection.execute("ANALYZE projects")
    finally:
        await connection.close()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="the service's DATABASE_URL (PostgreSQL)")
    parser.add_argument("--projects", type=int, default=SeedSize.projects)
    parser.add_argument("--owners", type=int, default=SeedSize.owners)
    parser.add_argument("--managers", type=int, default=SeedSize.managers)
    args = parser.parse_args(argv)
    try:
        seconds = asyncio.run(seed(args.database_url, SeedSize(args.projects, args.owners, args.managers)))
    except (ValueError, OSError, asyncpg.PostgresError) as exc:
        print(f"seed failed: {exc}", file=sys.stderr)
        return 2
    print(
        f"seeded {args.projects} projects across {args.owners} owners and {args.managers} managers "
        f"in {seconds:.1f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
