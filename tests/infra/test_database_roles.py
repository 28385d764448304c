"""The role bootstrap script against a real PostgreSQL 15: DDL for the migrator, DML for the app."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from infra import database_roles
from testsupport.servers import PostgresServer


def psql(
    server: PostgresServer, database: str, user: str, sql: str | None = None, **variables: str
) -> subprocess.CompletedProcess[str]:
    command = [*server.psql_argv(database, user), "-v", "ON_ERROR_STOP=1", "-qAt"]
    for name, value in variables.items():
        command += ["-v", f"{name}={value}"]
    return subprocess.run(command, input=sql, capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    name = f"roles_{uuid.uuid4().hex[:10]}"
    postgres.psql(f'CREATE DATABASE "{name}"')
    return name


def bootstrap(postgres: PostgresServer, database: str, preview_admin: bool = False) -> None:
    passwords = {"app_password": "app-pw", "migrator_password": "migrator-pw"}
    if preview_admin:
        passwords["preview_admin_password"] = "admin-pw"
    result = psql(
        postgres,
        database,
        postgres.user,
        database_roles.bootstrap_sql(preview_admin),
        db=database,
        **passwords,
    )
    assert result.returncode == 0, result.stderr


def test_migrator_owns_the_schema_and_the_app_gets_dml_only(postgres: PostgresServer, database: str) -> None:
    bootstrap(postgres, database)
    bootstrap(postgres, database)  # idempotent: a second run changes nothing and fails on nothing
    migrator, app = database_roles.migrator_role(database), database_roles.app_role(database)
    created = psql(postgres, database, migrator, "CREATE TABLE projects (id serial PRIMARY KEY, name text);")
    assert created.returncode == 0, created.stderr
    dml = psql(
        postgres,
        database,
        app,
        "INSERT INTO projects (name) VALUES ('a'); UPDATE projects SET name = 'b'; "
        "SELECT count(*) FROM projects; DELETE FROM projects;",
    )
    assert dml.returncode == 0, dml.stderr
    assert dml.stdout.split() == ["1"]
    for ddl in (
        "CREATE TABLE mine (id int);",
        "DROP TABLE projects;",
        "ALTER TABLE projects ADD COLUMN x int;",
    ):
        refused = psql(postgres, database, app, ddl)
        assert refused.returncode != 0, ddl
        assert "permission denied" in refused.stderr or "must be owner" in refused.stderr, refused.stderr


def test_app_reaches_tables_created_before_a_rerun(postgres: PostgresServer, database: str) -> None:
    bootstrap(postgres, database)
    migrator, app = database_roles.migrator_role(database), database_roles.app_role(database)
    assert psql(postgres, database, migrator, "CREATE TABLE later (id int);").returncode == 0
    assert psql(postgres, database, app, "SELECT * FROM later;").returncode == 0


def test_roles_cannot_create_databases_or_roles(postgres: PostgresServer, database: str) -> None:
    bootstrap(postgres, database)
    attributes = postgres.psql(
        "SELECT rolname, rolcreatedb, rolcreaterole, rolsuper FROM pg_roles "
        f"WHERE rolname IN ('{database}_app', '{database}_migrator') ORDER BY rolname"
    )
    assert attributes.split() == [f"{database}_app|f|f|f", f"{database}_migrator|f|f|f"]


def test_dev_gets_the_preview_admin(postgres: PostgresServer, database: str) -> None:
    bootstrap(postgres, database, preview_admin=True)
    assert postgres.psql(
        "SELECT rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'preview_admin'"
    ).split() == ["t|t"]
    made = psql(
        postgres,
        "postgres",
        "preview_admin",
        f'CREATE DATABASE "{database}_pr"; DROP DATABASE "{database}_pr";',
    )
    assert made.returncode == 0, made.stderr
