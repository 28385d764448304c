"""The projects write side: plain SQLAlchemy Core on the unit of work's connection.

Reads that must be fast (the list) do not come here: they go through the read model
(`read_model.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.kernel.errors import AuthenticationError
from app.projects.domain.models import Project, ProjectStatus, ProjectType
from app.projects.infrastructure.tables import projects


def _to_project(row: Any) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        description=row.description,
        type=ProjectType(row.type),
        status=ProjectStatus(row.status),
        owner_id=row.owner_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _values(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "description": project.description,
        "type": project.type.value,
        "status": project.status.value,
        "owner_id": project.owner_id,
        "created_at": project.created_at,
        "updated_at": project.updated_at,
    }


class SqlProjectRepository:
    def __init__(self, connection: AsyncConnection, seen: Callable[[Project], None]) -> None:
        self._conn = connection
        self._seen = seen  # the unit of work collects the events of what passes through here

    async def add(self, project: Project) -> None:
        try:
            await self._conn.execute(insert(projects).values(id=project.id, **_values(project)))
        except IntegrityError as exc:
            # The only constraint a new project can break is its owner's foreign key: a validly
            # signed token of a user that no longer exists. Not a server error. (The unit of
            # work rolls the transaction back on the way out.)
            raise AuthenticationError("The account this token belongs to no longer exists") from exc
        self._seen(project)

    async def get(self, project_id: uuid.UUID) -> Project | None:
        row = (await self._conn.execute(select(projects).where(projects.c.id == project_id))).first()
        if row is None:
            return None
        project = _to_project(row)
        self._seen(project)
        return project

    async def save(self, project: Project) -> None:
        await self._conn.execute(
            update(projects).where(projects.c.id == project.id).values(**_values(project))
        )

    async def delete(self, project_id: uuid.UUID) -> None:
        await self._conn.execute(delete(projects).where(projects.c.id == project_id))
