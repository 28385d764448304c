"""Project use cases: authorization by ownership and role, one commit each."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.idempotency.port import (
    IdempotencyRecord,
    IdempotentOutcome,
    IdempotentRequest,
    replay_or_refuse,
)
from app.kernel.clock import utcnow
from app.kernel.pagination import PageRequest
from app.kernel.principal import Principal
from app.projects.application.ports import ProjectReader, ProjectsUnitOfWork, ProjectsUnitOfWorkFactory
from app.projects.domain.errors import ProjectDeletionDeniedError, ProjectNotFoundError
from app.projects.domain.models import Project, ProjectStatus, ProjectType


@dataclass(frozen=True)
class CreateProject:
    name: str
    type: ProjectType
    description: str | None = None


_UNSET: object = object()


@dataclass(frozen=True)
class UpdateProject:
    """Only the fields present in the request change; `description=None` clears it."""

    name: str | None = None
    type: ProjectType | None = None
    status: ProjectStatus | None = None
    description: str | object | None = field(default=_UNSET)

    @property
    def changes_description(self) -> bool:
        return self.description is not _UNSET


class ProjectService:
    def __init__(self, uow: ProjectsUnitOfWorkFactory, reader: ProjectReader) -> None:
        self._uow = uow
        self._reader = reader

    async def create(self, actor: Principal, command: CreateProject) -> Project:
        project = self._new_project(actor, command)
        async with self._uow() as uow:
            await self._add(uow, project)
            await uow.commit()
        return project

    async def create_idempotently(
        self, actor: Principal, command: CreateProject, request: IdempotentRequest[Project]
    ) -> IdempotentOutcome:
        """Create once per (caller, key): a retry gets the first response and creates nothing.

        The key's record and the project commit in one transaction: no project without
        its record (a retry would create a second one), no record without its project.
        """
        project = self._new_project(actor, command)
        response = request.render(project)  # known before any I/O: the id is ours
        record = IdempotencyRecord(
            user_id=actor.user_id,
            key=request.key,
            request_hash=request.request_hash,
            response=response,
            created_at=project.created_at,
            expires_at=project.created_at + request.ttl,
        )
        async with self._uow() as uow:
            if (existing := await uow.idempotency.claim(record)) is not None:
                return replay_or_refuse(existing, request.request_hash)
            await self._add(uow, project)
            await uow.commit()
        return IdempotentOutcome(response, replayed=False)

    @staticmethod
    def _new_project(actor: Principal, command: CreateProject) -> Project:
        return Project.create(
            owner_id=actor.user_id,
            name=command.name,
            description=command.description,
            type=command.type,
            now=utcnow(),
        )

    @staticmethod
    async def _add(uow: ProjectsUnitOfWork, project: Project) -> None:
        await uow.projects.add(project)  # its ProjectCreated event goes to the outbox on commit

    async def list_page(self, actor: Principal, *, status: ProjectStatus | None, page: PageRequest) -> bytes:
        """The page the actor may see, as the API's JSON body (read model: no aggregates)."""
        owner_filter = None if actor.is_privileged else actor.user_id
        return await self._reader.page_json(owner_id=owner_filter, status=status, page=page)

    async def get(self, actor: Principal, project_id: uuid.UUID) -> Project:
        async with self._uow() as uow:
            return await self._visible(uow, actor, project_id)

    async def update(self, actor: Principal, project_id: uuid.UUID, command: UpdateProject) -> Project:
        async with self._uow() as uow:
            # Whoever may see a project may edit it: its owner, managers and admins.
            project = await self._visible(uow, actor, project_id)
            if command.name is not None:
                project.rename(command.name)
            if command.changes_description:
                assert command.description is None or isinstance(command.description, str)
                project.describe(command.description)
            if command.type is not None:
                project.change_type(command.type)
            if command.status is not None:
                project.change_status(command.status)
            project.touch(utcnow())
            await uow.projects.save(project)
            await uow.commit()
        return project

    async def delete(self, actor: Principal, project_id: uuid.UUID) -> None:
        if not Project.is_deletable_by(actor):
            raise ProjectDeletionDeniedError
        async with self._uow() as uow:
            await self._visible(uow, actor, project_id)
            await uow.projects.delete(project_id)
            await uow.commit()

    @staticmethod
    async def _visible(uow: ProjectsUnitOfWork, actor: Principal, project_id: uuid.UUID) -> Project:
        project = await uow.projects.get(project_id)
        if project is None or not project.is_visible_to(actor):
            raise ProjectNotFoundError
        return project
