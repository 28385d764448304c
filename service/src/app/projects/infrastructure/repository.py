from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.pagination import Cursor, Page, PageRequest
from app.projects.domain.models import Project, ProjectStatus, ProjectType
from app.projects.infrastructure.tables import projects

# Explicit column list: reads fetch exactly what the aggregate holds, nothing more.
_COLUMNS = (
    projects.c.id,
    projects.c.name,
    projects.c.description,
    projects.c.type,
    projects.c.status,
    projects.c.owner_id,
    projects.c.created_at,
    projects.c.updated_at,
)


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
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, project: Project) -> None:
        await self._conn.execute(insert(projects).values(id=project.id, **_values(project)))

    async def get(self, project_id: uuid.UUID) -> Project | None:
        row = (await self._conn.execute(select(*_COLUMNS).where(projects.c.id == project_id))).first()
        return _to_project(row) if row else None

    async def list(
        self, *, owner_id: uuid.UUID | None, status: ProjectStatus | None, page: PageRequest
    ) -> Page[Project]:
        query = select(*_COLUMNS)
        if owner_id is not None:
            query = query.where(projects.c.owner_id == owner_id)
        if status is not None:
            query = query.where(projects.c.status == status.value)
        if page.after is not None:
            # A row-value comparison, so the (…, created_at, id) index serves the seek.
            query = query.where(
                tuple_(projects.c.created_at, projects.c.id) < tuple_(page.after.created_at, page.after.id)
            )
        # One row beyond the page tells whether another page exists, without a COUNT.
        query = query.order_by(projects.c.created_at.desc(), projects.c.id.desc()).limit(page.limit + 1)
        rows = (await self._conn.execute(query)).all()
        items = [_to_project(row) for row in rows[: page.limit]]
        next_cursor = (
            Cursor(created_at=items[-1].created_at, id=items[-1].id) if len(rows) > page.limit else None
        )
        return Page(items=items, limit=page.limit, next_cursor=next_cursor)

    async def save(self, project: Project) -> None:
        await self._conn.execute(
            update(projects).where(projects.c.id == project.id).values(**_values(project))
        )

    async def delete(self, project_id: uuid.UUID) -> None:
        await self._conn.execute(delete(projects).where(projects.c.id == project_id))
