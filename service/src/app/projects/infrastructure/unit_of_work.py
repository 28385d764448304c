from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.sql_unit_of_work import SqlUnitOfWork
from app.projects.infrastructure.repository import SqlProjectRepository


class SqlProjectsUnitOfWork(SqlUnitOfWork):
    projects: SqlProjectRepository

    def _bind_repositories(self, connection: AsyncConnection) -> None:
        self.projects = SqlProjectRepository(connection)
