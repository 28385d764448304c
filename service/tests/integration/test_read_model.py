"""The projects read model: list pages as JSON, the same bytes as pydantic's on both backends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy import event, text

from app.identity.infrastructure.unit_of_work import SqlIdentityUnitOfWork
from app.kernel.clock import utcnow
from app.kernel.pagination import Cursor, PageRequest
from app.outbox.tables import write_events
from app.persistence.database import Database
from app.projects.domain.models import Project, ProjectStatus
from app.projects.infrastructure.read_model import SqlProjectReader
from app.projects.infrastructure.unit_of_work import SqlProjectsUnitOfWork
from app.projects.presentation.schemas import PageMeta, ProjectPage, ProjectRead
from service.tests.builders import a_project, a_user, make_settings


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    # One pooled connection on PostgreSQL: every read below reuses the same server session.
    database = Database(make_settings(database_url, db_pool_size=1, db_max_overflow=0))
    yield database
    await database.dispose()


async def _owner_with_projects(database: Database, descriptions: list[str | None]) -> list[Project]:
    owner = a_user()
    start = utcnow() - timedelta(hours=1)
    async with SqlIdentityUnitOfWork(database, write_events) as uow:
        await uow.users.add(owner)
        await uow.commit()
    created = [
        a_project(
            owner_id=owner.id,
            created_at=start + timedelta(seconds=i, microseconds=i % 2 * 123456),
            description=description,
            status=ProjectStatus.ACTIVE if i % 2 else ProjectStatus.PENDING,
        )
        for i, description in enumerate(descriptions)
    ]
    async with SqlProjectsUnitOfWork(database, write_events) as uow:
        for project in created:
            await uow.projects.add(project)
        await uow.commit()
    return sorted(created, key=lambda p: (p.created_at, p.id), reverse=True)


def _pydantic_page(items: list[Project], limit: int, next_cursor: Cursor | None) -> bytes:
    meta = PageMeta(
        limit=limit,
        has_more=next_cursor is not None,
        next_cursor=next_cursor.encode() if next_cursor else None,
    )
    page = ProjectPage(data=[ProjectRead.model_validate(p) for p in items], meta=meta)
    return page.model_dump_json(by_alias=True).encode()


async def test_pages_are_byte_for_byte_what_pydantic_writes(database: Database) -> None:
    descriptions = [None, 'quotes " and \\ and \n', "Name «ü» 🎉", None, "x"]
    newest_first = await _owner_with_projects(database, descriptions)
    owner = newest_first[0].owner_id
    reader = SqlProjectReader(database)

    first = await reader.page_json(owner_id=owner, status=None, page=PageRequest(limit=3))
    cursor = Cursor(created_at=newest_first[2].created_at, id=newest_first[2].id)
    assert first == _pydantic_page(newest_first[:3], 3, cursor)
    second = await reader.page_json(owner_id=owner, status=None, page=PageRequest(limit=3, after=cursor))
    assert second == _pydantic_page(newest_first[3:], 3, None)

    active = [p for p in newest_first if p.status is ProjectStatus.ACTIVE]
    by_status = await reader.page_json(owner_id=None, status=ProjectStatus.ACTIVE, page=PageRequest(limit=10))
    assert by_status == _pydantic_page(active, 10, None)
    nobody = await reader.page_json(owner_id=uuid.uuid4(), status=None, page=PageRequest())
    assert orjson.loads(nobody) == {"data": [], "meta": {"limit": 20, "hasMore": False, "nextCursor": None}}


async def test_postgresql_pages_come_from_the_driver_outside_any_transaction(postgres_url: str) -> None:
    database = Database(make_settings(postgres_url, db_pool_size=1, db_max_overflow=0))
    through_sqlalchemy: list[str] = []

    @event.listens_for(database.engine.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        through_sqlalchemy.append(statement)

    try:
        newest_first = await _owner_with_projects(database, [None, None])
        through_sqlalchemy.clear()
        reader = SqlProjectReader(database)
        body = await reader.page_json(owner_id=newest_first[0].owner_id, status=None, page=PageRequest())
        assert len(orjson.loads(body)["data"]) == 2
        assert through_sqlalchemy == []  # the driver's fetch, no SQLAlchemy execution
        async with database.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            assert driver is not None
            assert not driver.is_in_transaction()  # nothing left open on the pooled session
    finally:
        await database.dispose()


@pytest.mark.parametrize("noticed", [False, True], ids=["unnoticed", "noticed"])
async def test_a_connection_killed_under_a_read_is_invalidated_not_reused(
    postgres_url: str, noticed: bool
) -> None:
    database = Database(make_settings(postgres_url, db_pool_size=1, db_max_overflow=0))
    try:
        owner = (await _owner_with_projects(database, [None]))[0].owner_id
        async with database.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        killer = Database(make_settings(postgres_url))
        try:
            async with killer.connect() as connection:
                await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            await killer.dispose()
        if noticed:  # the driver has read the server's goodbye before the next read
            await asyncio.sleep(0.2)
        reader = SqlProjectReader(database)
        # asyncpg's own errors: InterfaceError once noticed; unnoticed, it may be a protocol error
        with pytest.raises((asyncpg.exceptions.InterfaceError, asyncpg.exceptions.InternalClientError)):
            await reader.page_json(owner_id=owner, status=None, page=PageRequest())
        # The dead connection left the pool: the next read gets a fresh one (pool size 1).
        body = await reader.page_json(owner_id=owner, status=None, page=PageRequest())
        async with database.connect() as connection:
            new_pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    finally:
        await database.dispose()
    assert len(orjson.loads(body)["data"]) == 1
    assert new_pid != pid
