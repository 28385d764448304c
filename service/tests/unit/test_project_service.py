from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from app.kernel.errors import InvalidInputError
from app.kernel.pagination import Cursor, PageRequest
from app.kernel.principal import Principal, Role
from app.projects.application.services import CreateProject, ProjectService, UpdateProject
from app.projects.domain.errors import ProjectDeletionDeniedError, ProjectNotFoundError
from app.projects.domain.models import ProjectCreated, ProjectStatus, ProjectType
from service.tests.builders import a_principal, a_project, projects_over_time
from service.tests.unit.fakes import FakeProjectReader, FakeUnitOfWork


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def service(uow: FakeUnitOfWork) -> ProjectService:
    return ProjectService(uow, FakeProjectReader(uow.projects))


async def test_create_commits_the_project_and_its_event_together(
    service: ProjectService, uow: FakeUnitOfWork
) -> None:
    owner = a_principal()
    project = await service.create(owner, CreateProject(name="  Apollo  ", type=ProjectType.RESEARCH))
    assert project.name == "Apollo"
    assert project.status is ProjectStatus.PENDING
    assert project.owner_id == owner.user_id
    assert uow.commits == 1
    [event] = uow.outbox
    assert isinstance(event, ProjectCreated)
    assert event.payload() == {"projectId": str(project.id), "ownerId": str(owner.user_id), "name": "Apollo"}


@pytest.mark.parametrize(("name", "description"), [("ab", None), ("x" * 101, None), ("Fine", "d" * 501)])
async def test_create_rejects_invalid_fields(
    service: ProjectService, uow: FakeUnitOfWork, name: str, description: str | None
) -> None:
    with pytest.raises(InvalidInputError):
        await service.create(
            a_principal(), CreateProject(name=name, type=ProjectType.CLIENT, description=description)
        )
    assert uow.commits == 0


async def test_members_list_only_their_own_projects_managers_list_all(
    service: ProjectService, uow: FakeUnitOfWork
) -> None:
    member = a_principal(Role.MEMBER)
    mine = a_project(owner_id=member.user_id)
    theirs = a_project()
    for project in (mine, theirs):
        await uow.projects.add(project)
    member_page = await _page(service, member, None, PageRequest())
    manager_page = await _page(service, a_principal(Role.MANAGER), None, PageRequest())
    assert _ids(member_page) == [str(mine.id)]
    assert set(_ids(manager_page)) == {str(mine.id), str(theirs.id)}


async def test_list_filters_by_status_and_pages_without_gaps(
    service: ProjectService, uow: FakeUnitOfWork
) -> None:
    admin = a_principal(Role.ADMIN)
    for project in projects_over_time(uuid.uuid4(), 7):
        await uow.projects.add(project)
    archived = a_project(status=ProjectStatus.ARCHIVED)
    await uow.projects.add(archived)
    only_archived = await _page(service, admin, ProjectStatus.ARCHIVED, PageRequest())
    assert _ids(only_archived) == [str(archived.id)]

    seen: list[str] = []
    page = await _page(service, admin, ProjectStatus.PENDING, PageRequest(limit=3))
    seen += _ids(page)
    while cursor := page["meta"]["nextCursor"]:
        page = await _page(service, admin, ProjectStatus.PENDING, PageRequest(3, Cursor.decode(cursor)))
        seen += _ids(page)
    assert len(seen) == len(set(seen)) == 7


async def test_get_hides_other_members_projects(service: ProjectService, uow: FakeUnitOfWork) -> None:
    project = a_project()
    await uow.projects.add(project)
    with pytest.raises(ProjectNotFoundError):
        await service.get(a_principal(Role.MEMBER), project.id)
    assert (await service.get(a_principal(Role.MANAGER), project.id)).id == project.id
    with pytest.raises(ProjectNotFoundError):
        await service.get(a_principal(Role.ADMIN), uuid.uuid4())


async def test_update_changes_only_the_given_fields(service: ProjectService, uow: FakeUnitOfWork) -> None:
    owner = a_principal()
    project = await service.create(
        owner, CreateProject(name="Zeus", type=ProjectType.CLIENT, description="keep")
    )
    updated = await service.update(owner, project.id, UpdateProject(status=ProjectStatus.ACTIVE))
    assert (updated.name, updated.description, updated.status) == ("Zeus", "keep", ProjectStatus.ACTIVE)
    assert updated.updated_at >= project.updated_at
    cleared = await service.update(
        owner, project.id, UpdateProject(name="Hera", type=ProjectType.INTERNAL, description=None)
    )
    assert (cleared.name, cleared.type, cleared.description) == ("Hera", ProjectType.INTERNAL, None)
    assert uow.commits == 3


async def test_update_by_a_stranger_is_not_found(service: ProjectService, uow: FakeUnitOfWork) -> None:
    project = a_project()
    await uow.projects.add(project)
    with pytest.raises(ProjectNotFoundError):
        await service.update(a_principal(), project.id, UpdateProject(name="Mine now"))


async def test_delete_is_for_managers_and_admins(service: ProjectService, uow: FakeUnitOfWork) -> None:
    member = a_principal()
    project = a_project(owner_id=member.user_id)
    await uow.projects.add(project)
    with pytest.raises(ProjectDeletionDeniedError):
        await service.delete(member, project.id)
    await service.delete(a_principal(Role.MANAGER), project.id)
    assert await uow.projects.get(project.id) is None
    with pytest.raises(ProjectNotFoundError):
        await service.delete(a_principal(Role.ADMIN), project.id)


async def _page(
    service: ProjectService, actor: Principal, status: ProjectStatus | None, page: PageRequest
) -> Any:
    return orjson.loads(await service.list_page(actor, status=status, page=page))


def _ids(page: Any) -> list[str]:
    return [item["id"] for item in page["data"]]
