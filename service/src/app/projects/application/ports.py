from __future__ import annotations

import uuid
from typing import Protocol

from app.core.idempotency import IdempotencyStore
from app.core.pagination import Page, PageRequest
from app.core.unit_of_work import UnitOfWork
from app.projects.domain.models import Project, ProjectStatus


class ProjectRepository(Protocol):
    async def add(self, project: Project) -> None: ...
    async def get(self, project_id: uuid.UUID) -> Project | None: ...
    async def list(
        self, *, owner_id: uuid.UUID | None, status: ProjectStatus | None, page: PageRequest
    ) -> Page[Project]: ...
    async def save(self, project: Project) -> None: ...
    async def delete(self, project_id: uuid.UUID) -> None: ...


class ProjectsUnitOfWork(UnitOfWork, Protocol):
    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def idempotency(self) -> IdempotencyStore: ...

    def track(self, aggregate: Project) -> None:
        """Register an aggregate whose events are committed with the transaction."""
        ...


class ProjectsUnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> ProjectsUnitOfWork:
        """`read_only=True` for a use case that only reads with one statement: it may skip the
        transaction (no BEGIN/ROLLBACK round trips) and must not commit."""
        ...
