"""Alembic environment: async engine, our metadata, batch mode on SQLite.

`app.migrate` passes its options in `config.attributes["app_migrate"]`; the work inside the
transaction (history, "database ahead" check) is `app.migrate.sync_schema`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.idempotency.tables
import app.identity.infrastructure.tables
import app.outbox.tables
import app.projects.infrastructure.tables  # noqa: F401 - registers the tables on the metadata
from app.migrate import RunOptions, include_name, sync_schema
from app.persistence.database import metadata

# Any 64-bit number unique to this service: serialises concurrent `migrate` runs.
MIGRATION_LOCK_ID = 7_246_001


def _options() -> RunOptions:
    options = context.config.attributes.get("app_migrate")
    if options is None:  # the bare `alembic` CLI: plain upgrade, no lock or statement bounds
        options = RunOptions(
            release="alembic-cli", allow_ahead=False, lock_timeout_ms=0, statement_timeout_ms=0
        )
    return options


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    options = _options()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,  # SQLite alters tables by copying them
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        if not sqlite:
            # Wait as long as it takes for another pod's run; only then bound our own DDL.
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.execute(text(f"SET LOCAL lock_timeout = {int(options.lock_timeout_ms)}"))
            connection.execute(text(f"SET LOCAL statement_timeout = {int(options.statement_timeout_ms)}"))
        sync_schema(connection, context.script, options, context.run_migrations)


async def _run_async() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
