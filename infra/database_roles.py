"""The two database roles every environment gets, defined once.

``<db>_migrator`` owns the schema and runs the migrations (DDL); ``<db>_app`` may only read and
write rows (DML) and gets those rights on every table the migrator creates, through default
privileges. Environments create them with :func:`bootstrap_sql` (run in-cluster with the
AWS-managed master credentials, which never reach Pulumi); previews create the same roles with
the pulumi-postgresql provider (infra/components/preview.py) from the same constants.
"""

from __future__ import annotations

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


def bootstrap_sql(database: str, preview_admin: bool = False) -> str:
    """An idempotent psql script: run it connected to `database` as the master user.

    Passwords arrive as psql variables (``psql -v app_password=...``): the script holds none.
    """
    app, migrator = app_role(database), migrator_role(database)
    lines = [
        "\\set ON_ERROR_STOP on",
        *_ensure_role(migrator, "migrator_password", "NOSUPERUSER NOCREATEDB NOCREATEROLE"),
        *_ensure_role(app, "app_password", "NOSUPERUSER NOCREATEDB NOCREATEROLE"),
        # Membership lets the master user set default privileges on the migrator's behalf.
        f"GRANT {migrator} TO CURRENT_USER;",
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC;",
        f"GRANT CONNECT ON DATABASE {database} TO {app}, {migrator};",
        f"ALTER SCHEMA {SCHEMA} OWNER TO {migrator};",
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO {app};",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {migrator} IN SCHEMA {SCHEMA} "
        f"GRANT {', '.join(APP_TABLE_PRIVILEGES)} ON TABLES TO {app};",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {migrator} IN SCHEMA {SCHEMA} "
        f"GRANT {', '.join(APP_SEQUENCE_PRIVILEGES)} ON SEQUENCES TO {app};",
        # Tables that existed before the roles did (a re-run, or an adopted database).
        f"GRANT {', '.join(APP_TABLE_PRIVILEGES)} ON ALL TABLES IN SCHEMA {SCHEMA} TO {app};",
        f"GRANT {', '.join(APP_SEQUENCE_PRIVILEGES)} ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {app};",
    ]
    if preview_admin:
        lines += _ensure_role(PREVIEW_ADMIN_ROLE, "preview_admin_password", "CREATEDB CREATEROLE")
    return "\n".join(lines) + "\n"


def database_url(role: str, password: str, host: str, port: int, database: str) -> str:
    """The service's DATABASE_URL form (asyncpg, TLS required); `password` already URL-quoted."""
    return f"postgresql+asyncpg://{role}:{password}@{host}:{port}/{database}?ssl=require"
