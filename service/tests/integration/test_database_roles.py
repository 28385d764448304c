"""service/sql/bootstrap_roles.sql: the migrator owns the schema, the app's role has DML only."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import asyncpg
import pytest

from app.migrate import main, upgrade
from service.tests.builders import make_settings
from testsupport.database_roles import RoleUrls, bootstrap_roles, create_database_with_roles
from testsupport.servers import PostgresServer


@pytest.fixture
def roles_database(postgres: PostgresServer) -> RoleUrls:
    urls = create_database_with_roles(postgres, f"roles_{uuid.uuid4().hex[:8]}")
    upgrade(make_settings(urls.app, migration_database_url=urls.migrator))
    return urls


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _execute(url: str, sql: str) -> str:
    connection = await asyncpg.connect(_dsn(url))
    try:
        return str(await connection.execute(sql))
    finally:
        await connection.close()


DDL = [
    "CREATE TABLE sneaky (id int)",
    "ALTER TABLE users ADD COLUMN sneaky text",
    "DROP TABLE projects",
    "TRUNCATE outbox_events",
    "CREATE INDEX ix_sneaky ON users (name)",
    "ALTER TABLE users RENAME COLUMN name TO full_name",
]


@pytest.mark.parametrize("statement", DDL)
def test_the_app_role_cannot_run_ddl(roles_database: RoleUrls, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(_execute(roles_database.app, statement))


def test_the_app_role_reads_and_writes_rows(roles_database: RoleUrls) -> None:
    user_id = uuid.uuid4()
    insert = (
        "INSERT INTO users (id, email, name, password_hash, role, created_at, updated_at) "
        f"VALUES ('{user_id}', 'dml@example.com', 'D', 'h', 'member', now(), now())"
    )
    assert asyncio.run(_execute(roles_database.app, insert)) == "INSERT 0 1"
    assert asyncio.run(
        _execute(roles_database.app, f"UPDATE users SET name = 'E' WHERE id = '{user_id}'")
    ) == ("UPDATE 1")
    assert (
        asyncio.run(_execute(roles_database.app, f"DELETE FROM users WHERE id = '{user_id}'")) == "DELETE 1"
    )


def test_the_migrator_owns_every_table(postgres: PostgresServer, roles_database: RoleUrls) -> None:
    owners = postgres.psql(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'",
        database=roles_database.database,
    ).split()
    assert owners == [f"{roles_database.database}_migrator"]


def test_migrating_with_the_app_role_fails_in_one_line(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = create_database_with_roles(postgres, f"roles_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("DATABASE_URL", fresh.app)
    monkeypatch.setenv("MIGRATION_DATABASE_URL", fresh.app)
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith("migration failed:") and "permission denied" in err
    assert len(err.strip().splitlines()) == 1


def test_bootstrap_is_idempotent_and_adopts_tables_of_an_earlier_owner(postgres: PostgresServer) -> None:
    name = f"legacy_{uuid.uuid4().hex[:8]}"
    postgres.psql(f'CREATE DATABASE "{name}"')
    # Before the roles existed, migrations ran with the superuser's (or the app's) credentials.
    upgrade(make_settings(postgres.url(name)))
    urls = bootstrap_roles(postgres, name)
    bootstrap_roles(postgres, name)
    owners = postgres.psql(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", database=name
    )
    assert owners.split() == [f"{name}_migrator"]
    outcome = upgrade(make_settings(urls.app, migration_database_url=urls.migrator))
    assert outcome.state == "current"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(_execute(urls.app, "DROP TABLE users"))


def test_bootstrap_without_a_database_name_is_an_error(postgres: PostgresServer) -> None:
    from testsupport.database_roles import BOOTSTRAP_SQL
    from testsupport.servers import pg_tool

    result = subprocess.run(
        [
            pg_tool("psql"),
            "-h",
            postgres.host,
            "-p",
            str(postgres.port),
            "-U",
            "postgres",
            "-f",
            str(BOOTSTRAP_SQL),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "pass -v db=<database name>" in result.stderr
