"""Repositories and the unit of work on real databases (SQLite and PostgreSQL 15)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
from sqlalchemy import func, select, text

from app.identity.domain.errors import EmailAlreadyRegisteredError
from app.identity.infrastructure.unit_of_work import SqlIdentityUnitOfWork
from app.kernel.errors import AuthenticationError
from app.kernel.pagination import Cursor, PageRequest
from app.kernel.principal import Role
from app.outbox.tables import outbox_events, write_events
from app.persistence.database import Database, create_engine
from app.projects.domain.models import Project, ProjectStatus, ProjectType
from app.projects.infrastructure.read_model import SqlProjectReader
from app.projects.infrastructure.unit_of_work import SqlProjectsUnitOfWork
from service.tests.builders import a_project, a_user, make_settings, projects_over_time


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(make_settings(database_url))
    yield database
    await database.dispose()


async def _owner(database: Database, role: Role = Role.MEMBER) -> uuid.UUID:
    user = a_user(role=role)
    async with SqlIdentityUnitOfWork(database, write_events) as uow:
        await uow.users.add(user)
        await uow.commit()
    return user.id


async def test_users_round_trip_and_emails_are_unique(database: Database) -> None:
    user = a_user(role=Role.MANAGER)
    async with SqlIdentityUnitOfWork(database, write_events) as uow:
        await uow.users.add(user)
        await uow.commit()
    async with SqlIdentityUnitOfWork(database, write_events) as uow:
        assert await uow.users.get(user.id) == user
        assert await uow.users.get_by_email(user.email) == user
        assert await uow.users.any_admin() is False
        with pytest.raises(EmailAlreadyRegisteredError):
            await uow.users.add(a_user(email=user.email))


async def test_leaving_without_commit_rolls_back(database: Database) -> None:
    user = a_user()
    async with SqlIdentityUnitOfWork(database, write_events) as uow:
        await uow.users.add(user)
    async with SqlIdentityUnitOfWork(database, write_events) as uow:
        assert await uow.users.get(user.id) is None


async def test_an_error_inside_the_block_rolls_back(database: Database) -> None:
    user = a_user()
    with pytest.raises(RuntimeError):
        async with SqlIdentityUnitOfWork(database, write_events) as uow:
            await uow.users.add(user)
            raise RuntimeError("boom")
    async with SqlIdentityUnitOfWork(database, write_events) as uow:
        assert await uow.users.get(user.id) is None


async def test_a_project_and_its_outbox_event_commit_together(database: Database) -> None:
    owner_id = await _owner(database)
    project = Project.create(
        owner_id=owner_id, name="Atlas", description=None, type=ProjectType.CLIENT, now=a_project().created_at
    )
    async with SqlProjectsUnitOfWork(database, write_events) as uow:
        await uow.projects.add(project)
        await uow.commit()
    async with database.connect() as conn:
        row = (await conn.execute(select(outbox_events))).one()
    assert row.event_type == "project.created"
    assert row.status == "pending"
    assert row.payload["data"]["projectId"] == str(project.id)
    assert row.payload["eventId"] == str(row.id)


async def test_a_failed_transaction_writes_neither_project_nor_event(database: Database) -> None:
    project = Project.create(
        owner_id=uuid.uuid4(),
        name="Orphan",
        description=None,
        type=ProjectType.CLIENT,
        now=a_project().created_at,
    )
    # Unknown owner: the foreign key refuses it, reported as the token's account being gone.
    with pytest.raises(AuthenticationError, match="no longer exists"):
        async with SqlProjectsUnitOfWork(database, write_events) as uow:
            await uow.projects.add(project)
            await uow.commit()
    async with database.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(outbox_events))).scalar() == 0


async def test_keyset_pages_cover_every_row_once_in_order(database: Database) -> None:
    owner_id = await _owner(database)
    other_id = await _owner(database)
    rows = projects_over_time(owner_id, 23) + projects_over_time(other_id, 5)
    async with SqlProjectsUnitOfWork(database, write_events) as uow:
        for project in rows:
            await uow.projects.add(project)
        await uow.commit()
    expected = sorted(
        (p for p in rows if p.owner_id == owner_id), key=lambda p: (p.created_at, p.id), reverse=True
    )

    seen: list[str] = []
    request = PageRequest(limit=5)
    reader = SqlProjectReader(database)
    while True:
        page = orjson.loads(await reader.page_json(owner_id=owner_id, status=None, page=request))
        seen += [item["id"] for item in page["data"]]
        if not page["meta"]["hasMore"]:
            break
        request = PageRequest(limit=5, after=Cursor.decode(page["meta"]["nextCursor"]))
    assert seen == [str(p.id) for p in expected]


async def test_status_filter_update_and_delete(database: Database) -> None:
    owner_id = await _owner(database)
    active = a_project(owner_id=owner_id, status=ProjectStatus.ACTIVE)
    pending = a_project(owner_id=owner_id)
    async with SqlProjectsUnitOfWork(database, write_events) as uow:
        await uow.projects.add(active)
        await uow.projects.add(pending)
        await uow.commit()
    page = await SqlProjectReader(database).page_json(
        owner_id=None, status=ProjectStatus.ACTIVE, page=PageRequest()
    )
    assert [item["id"] for item in orjson.loads(page)["data"]] == [str(active.id)]
    async with SqlProjectsUnitOfWork(database, write_events) as uow:
        pending.rename("Renamed project")
        await uow.projects.save(pending)
        await uow.projects.delete(active.id)
        await uow.commit()
    async with SqlProjectsUnitOfWork(database, write_events) as uow:
        assert (await uow.projects.get(pending.id)).name == "Renamed project"  # type: ignore[union-attr]
        assert await uow.projects.get(active.id) is None


SEED_SQL = """
INSERT INTO users (id, email, name, password_hash, role, created_at, updated_at)
SELECT md5('u' || g)::uuid, 'u' || g || '@example.com', 'U', 'x', 'member', now(), now()
FROM generate_series(1, 50) g;
INSERT INTO projects (id, name, description, type, status, owner_id, created_at, updated_at)
SELECT md5('p' || g)::uuid, 'Project ' || g, NULL, 'internal',
       (ARRAY['pending', 'active', 'archived'])[1 + g % 3], md5('u' || (1 + g % 50))::uuid,
       now() - g * interval '1 second', now()
FROM generate_series(1, 20000) g;
ANALYZE;
"""


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("owner_id = md5('u7')::uuid AND status = 'active'", "ix_projects_owner_status_created"),
        ("owner_id = md5('u7')::uuid", "ix_projects_owner_created"),
        ("status = 'archived'", "ix_projects_status_created"),
        ("true", "ix_projects_created"),
    ],
)
async def test_each_list_query_shape_is_served_by_its_index(
    postgres_url: str, where: str, index: str
) -> None:
    engine = create_engine(make_settings(postgres_url))
    try:
        async with engine.begin() as conn:
            for statement in filter(str.strip, SEED_SQL.split(";")):
                await conn.execute(text(statement))
        async with engine.connect() as conn:
            plan = (
                (
                    await conn.execute(
                        text(
                            f"EXPLAIN SELECT id FROM projects WHERE {where} "
                            "ORDER BY created_at DESC, id DESC LIMIT 21"
                        )
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert index in "\n".join(plan), plan
    assert "Sort" not in "\n".join(plan), "the index must deliver the keyset order without a sort"
