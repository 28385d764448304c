"""Create a database with the service's two roles (service/sql/bootstrap_roles.sql) on a harness server."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from testsupport.servers import PostgresServer

BOOTSTRAP_SQL = Path(__file__).resolve().parent.parent / "service" / "sql" / "bootstrap_roles.sql"


@dataclass(frozen=True)
class RoleUrls:
    """SQLAlchemy URLs of one database: the app's role (DML) and the migrator's (DDL)."""

    database: str
    app: str
    migrator: str


def bootstrap_roles(server: PostgresServer, database: str) -> RoleUrls:
    """Run the bootstrap SQL as the superuser against `database` (which must exist)."""
    subprocess.run(
        [*server.psql_argv(database), "-q", "-v", f"db={database}", "-f", str(BOOTSTRAP_SQL)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return role_urls(server, database)


def role_urls(server: PostgresServer, database: str) -> RoleUrls:
    def url(role: str) -> str:
        return f"postgresql+asyncpg://{role}@{server.host}:{server.port}/{database}"

    return RoleUrls(database, url(f"{database}_app"), url(f"{database}_migrator"))


def create_database_with_roles(server: PostgresServer, database: str) -> RoleUrls:
    server.psql(f'CREATE DATABASE "{database}"')
    return bootstrap_roles(server, database)
