"""The two database roles every environment gets, defined once.

``<db>_migrator`` owns the schema and runs the migrations (DDL); ``<db>_app`` may only read and
write rows (DML) and gets those rights on every table the migrator creates, through default
privileges. Environments create them with :func:`bootstrap_sql`, i.e. the service's own
service/sql/bootstrap_roles.sql (run in-cluster with the AWS-managed master credentials, which
never reach Pulumi); previews create the same roles with the pulumi-postgresql provider
(infra/components/preview.py) from the constants below.
"""

from __future__ import annotations

from kit.paths import SERVICE

# The roles' one definition (CONTRACTS.md): DDL for the migrator, DML for the app.
BOOTSTRAP_SQL = SERVICE / "sql" / "bootstrap_roles.sql"

APP_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
APP_SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")
SCHEMA = "public"
# On the dev server only: the role the preview stacks log in as to create their databases.
PREVIEW_ADMIN_ROLE = "preview_admin"


def app_role(database: str) -> str:
    return f"{database}_app"


def migrator_role(database: str) -> str:
    return f"{database}_migrator"


def _ensure_role(role: str, password_variable: str, attributes: str) -> list[str]:
    return [
        # `role` is one of this module's identifiers (the schema restricts the database name).
        f"SELECT 'CREATE ROLE {role}' "  # noqa: S608
        f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec",
        f"ALTER ROLE {role} WITH LOGIN {attributes} PASSWORD :'{password_variable}';",
    ]


def bootstrap_sql(preview_admin: bool = False) -> str:
    """The psql script a Job runs connected to the database as the master user.

    It is the service's own service/sql/bootstrap_roles.sql (one definition of the roles, also
    used by the test harness and the restore drill), plus, on the dev server, the role previews
    log in as. The database arrives as ``psql -v db=<name>`` and the passwords as psql variables
    (``-v app_password=...``): the script holds none.
    """
    script = BOOTSTRAP_SQL.read_text()
    if preview_admin:
        script += (
            "\n".join(
                [
                    "",
                    "-- Previews (dev only): may create their databases and roles.",
                    *_ensure_role(PREVIEW_ADMIN_ROLE, "preview_admin_password", "CREATEDB CREATEROLE"),
                ]
            )
            + "\n"
        )
    return script


def database_url(role: str, password: str, host: str, port: int, database: str) -> str:
    """The service's DATABASE_URL form (asyncpg, TLS required); `password` already URL-quoted."""
    return f"postgresql+asyncpg://{role}:{password}@{host}:{port}/{database}?ssl=require"
