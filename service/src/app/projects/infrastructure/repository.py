from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.database import fetch_rows
from app.core.errors import AuthenticationError
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


# Dictionary lookups instead of Enum calls: the list endpoint converts 20 rows per request.
_TYPES = {member.value: member for member in ProjectType}
_STATUSES = {member.value: member for member in ProjectStatus}


def _to_project(row: Any) -> Project:
    # Positional: _COLUMNS is in the dataclass's field order.
    id_, name, description, type_, status, owner_id, created_at, updated_at = row
    return Project(id_, name, description, _TYPES[type_], _STATUSES[status], owner_id, created_at, updated_at)


_GET_STATEMENT = select(*_COLUMNS).where(projects.c.id == bindparam("project_id"))


@functools.cache
def _list_statement(*, by_owner: bool, by_status: bool, after: bool) -> Select[Any]:
    """One statement object per query shape, values bound at execution.

    Built once: building a select() and deriving its cache key on every request cost more
    CPU than the query itself (~250 us of the list endpoint; SQLAlchemy memoizes the
    cache key on the statement object, so a reused statement skips that too).
    """
    query = select(*_COLUMNS)
    if by_owner:
        query = query.where(projects.c.owner_id == bindparam("owner_id"))
    if by_status:
        query = query.where(projects.c.status == bindparam("status"))
    if after:
        # A row-value comparison, so the (…, created_at, id) index serves the seek.
        query = query.where(
            tuple_(projects.c.created_at, projects.c.id)
            < tuple_(
                bindparam("after_created_at", type_=projects.c.created_at.type),
                bindparam("after_id", type_=projects.c.id.type),
            )
        )
    # One row beyond the page tells whether another page exists, without a COUNT.
    return query.order_by(projects.c.created_at.desc(), projects.c.id.desc()).limit(bindparam("fetch"))


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
        try:
            await self._conn.execute(insert(projects).values(id=project.id, **_values(project)))
        except IntegrityError as exc:
            # The only constraint a new project can break is its owner's foreign key: a validly
            # signed token of a user that no longer exists. Not a server error. (The unit of
            # work rolls the transaction back on the way out.)
            raise AuthenticationError("The account this token belongs to no longer exists") from exc

    async def get(self, project_id: uuid.UUID) -> Project | None:
        rows = await fetch_rows(self._conn, _GET_STATEMENT, {"project_id": project_id})
        row = rows[0] if rows else None
        return _to_project(row) if row else None

    async def list(
        self, *, owner_id: uuid.UUID | None, status: ProjectStatus | None, page: PageRequest
    ) -> Page[Project]:
        statement = _list_statement(
            by_owner=owner_id is not None, by_status=status is not None, after=page.after is not None
        )
        values: dict[str, Any] = {"fetch": page.limit + 1}
        if owner_id is not None:
            values["owner_id"] = owner_id
        if status is not None:
            values["status"] = status.value
        if page.after is not None:
            values["after_created_at"], values["after_id"] = page.after.created_at, page.after.id
        rows = await fetch_rows(self._conn, statement, values)
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
