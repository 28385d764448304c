"""fetch_rows: reads of read-only units of work go straight to asyncpg, with SQLAlchemy's typing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import String, event, literal, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from app.core.clock import utcnow
from app.core.database import create_engine, fetch_rows
from app.core.pagination import Cursor, PageRequest
from app.identity.infrastructure.unit_of_work import SqlIdentityUnitOfWork
from app.projects.infrastructure.unit_of_work import SqlProjectsUnitOfWork
from service.tests.builders import a_project, a_user
from service.tests.conftest import make_settings


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    # One pooled connection: every unit of work below reuses the same server session.
    engine = create_engine(make_settings(postgres_url, db_pool_size=1, db_max_overflow=0))
    yield engine
    await engine.dispose()


@pytest.fixture
def statements_via_sqlalchemy(engine: AsyncEngine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    return seen


async def _owner_with_projects(engine: AsyncEngine, count: int) -> uuid.UUID:
    owner = a_user()
    start = utcnow() - timedelta(hours=1)
    async with SqlIdentityUnitOfWork(engine) as uow:
        await uow.users.add(owner)
        await uow.commit()
    async with SqlProjectsUnitOfWork(engine) as uow:
        for i in range(count):
            await uow.projects.add(a_project(owner_id=owner.id, created_at=start + timedelta(seconds=i)))
        await uow.commit()
    return owner.id


async def test_read_only_reads_bypass_sqlalchemy_and_return_the_same_pages(
    engine: AsyncEngine, statements_via_sqlalchemy: list[str]
) -> None:
    owner = await _owner_with_projects(engine, 5)
    statements_via_sqlalchemy.clear()
    async with SqlProjectsUnitOfWork(engine, read_only=True) as uow:
        first = await uow.projects.list(owner_id=owner, status=None, page=PageRequest(limit=3))
        assert first.next_cursor is not None
        second = await uow.projects.list(
            owner_id=owner, status=None, page=PageRequest(limit=3, after=first.next_cursor)
        )
        one = await uow.projects.get(first.items[0].id)
    assert statements_via_sqlalchemy == []  # all three went through the driver

    async with SqlProjectsUnitOfWork(engine) as uow:  # in a transaction: SQLAlchemy's execute
        in_transaction = await uow.projects.list(owner_id=owner, status=None, page=PageRequest(limit=3))
        again = await uow.projects.list(
            owner_id=owner, status=None, page=PageRequest(limit=3, after=in_transaction.next_cursor)
        )
    assert len(statements_via_sqlalchemy) == 2
    assert first == in_transaction and second == again
    assert [p.created_at for p in first.items + second.items] == sorted(
        (p.created_at for p in first.items + second.items), reverse=True
    )
    assert len(second.items) == 2 and second.next_cursor is None
    assert one == first.items[0]
    assert all(
        p.created_at.tzinfo is not None and p.created_at.utcoffset() == timedelta(0) for p in first.items
    )


async def test_bind_processing_still_applies_on_the_driver_path(engine: AsyncEngine) -> None:
    owner = await _owner_with_projects(engine, 1)
    naive = Cursor(created_at=datetime(2030, 1, 1), id=uuid.uuid4())
    async with SqlProjectsUnitOfWork(engine, read_only=True) as uow:
        with pytest.raises(ValueError, match="naive datetime"):
            await uow.projects.list(owner_id=owner, status=None, page=PageRequest(after=naive))


class _Shouting(TypeDecorator[str]):
    impl = String
    cache_ok = True

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return value.upper() if value is not None else None


async def test_result_processing_applies_when_a_type_has_it(engine: AsyncEngine) -> None:
    statement = select(literal("quiet", type_=_Shouting()).label("word"), literal(7).label("n"))
    async with SqlProjectsUnitOfWork(engine, read_only=True) as uow:
        direct = await fetch_rows(uow.connection, statement, {})
    async with SqlProjectsUnitOfWork(engine) as uow:
        via_sqlalchemy = await fetch_rows(uow.connection, statement, {})
    assert [tuple(r) for r in direct] == [tuple(r) for r in via_sqlalchemy] == [("QUIET", 7)]


@pytest.mark.parametrize("noticed", [False, True], ids=["unnoticed", "noticed"])
async def test_a_connection_killed_under_a_read_is_invalidated_not_reused(
    engine: AsyncEngine, noticed: bool
) -> None:
    owner = await _owner_with_projects(engine, 1)
    async with SqlProjectsUnitOfWork(engine, read_only=True) as uow:
        pid = (await uow.connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    killer = create_engine(make_settings(engine.url.render_as_string(hide_password=False)))
    try:
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()
    if noticed:  # the driver has read the server's goodbye before the next read
        await asyncio.sleep(0.2)
    async with SqlProjectsUnitOfWork(engine, read_only=True) as uow:
        # asyncpg's own errors: InterfaceError once noticed; unnoticed, it may be a protocol error
        with pytest.raises((asyncpg.exceptions.InterfaceError, asyncpg.exceptions.InternalClientError)):
            await uow.projects.list(owner_id=owner, status=None, page=PageRequest())
    # The dead connection left the pool: the next read gets a fresh one (pool size 1).
    async with SqlProjectsUnitOfWork(engine, read_only=True) as uow:
        page = await uow.projects.list(owner_id=owner, status=None, page=PageRequest())
        new_pid = (await uow.connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    assert len(page.items) == 1
    assert new_pid != pid
