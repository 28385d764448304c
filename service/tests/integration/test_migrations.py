"""Stairway test: every revision upgrades, downgrades and upgrades again, on both backends."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

import app.idempotency.tables
import app.identity.infrastructure.tables
import app.outbox.tables
import app.projects.infrastructure.tables  # noqa: F401 - tables on the metadata
from app.migrate import BOOKKEEPING_TABLES, alembic_config, downgrade, include_name, upgrade
from app.persistence.database import metadata
from service.tests.builders import make_settings
from testsupport.servers import PostgresServer


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'stairway.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"stairway_{uuid.uuid4().hex[:8]}"
    server.psql(f'CREATE DATABASE "{name}"')
    return server.url(name)


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names - BOOKKEEPING_TABLES


def test_every_revision_upgrades_and_downgrades(empty_database: str) -> None:
    settings = make_settings(empty_database)
    steps = revisions()
    assert steps[0] == "0001" and len(steps) >= 3
    previous = "base"
    for revision in steps:
        upgrade(settings, revision)
        downgrade(settings, previous)
        upgrade(settings, revision)
        previous = revision
    assert asyncio.run(_tables(empty_database)) == set(metadata.tables)
    downgrade(settings, "base")
    assert asyncio.run(_tables(empty_database)) == set()


def test_migrations_match_the_models(empty_database: str) -> None:
    upgrade(make_settings(empty_database))

    async def diff() -> list[object]:
        engine = create_async_engine(empty_database)
        async with engine.connect() as conn:
            result = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"include_name": include_name}), metadata
                )
            )
        await engine.dispose()
        return list(result)

    assert asyncio.run(diff()) == []


def test_upgrade_is_idempotent(empty_database: str) -> None:
    settings = make_settings(empty_database)
    upgrade(settings)
    upgrade(settings)  # a second pod running the migration job changes nothing
    assert asyncio.run(_tables(empty_database)) == set(metadata.tables)
