from __future__ import annotations

import uuid
from typing import Protocol

from app.idempotency.port import IdempotencyStore
from app.kernel.pagination import PageRequest
from app.kernel.unit_of_work import UnitOfWork
from app.projects.domain.models import Project, ProjectStatus


class ProjectRepository(Protocol):
    async def add(self, project: Project) -> None: ...
    async def get(self, project_id: uuid.UUID) -> Project | None: ...
    async def save(self, project: Project) -> None: ...
    async def delete(self, project_id: uuid.UUID) -> None: ...


class ProjectsUnitOfWork(UnitOfWork, Protocol):
    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def idempotency(self) -> IdempotencyStore: ...


class ProjectsUnitOfWorkFactory(Protocol):
    def __call__(self) -> ProjectsUnitOfWork: ...


class ProjectReader(Protocol):
    """The read model: list pages as the API's JSON body (ProjectPage), built in one go."""

    async def page_json(
        self, *, owner_id: uuid.UUID | None, status: ProjectStatus | None, page: PageRequest
    ) -> bytes: ...
