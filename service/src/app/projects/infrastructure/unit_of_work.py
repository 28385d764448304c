from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.idempotency.store import SqlIdempotencyStore
from app.persistence.unit_of_work import SqlUnitOfWork
from app.projects.infrastructure.repository import SqlProjectRepository


class SqlProjectsUnitOfWork(SqlUnitOfWork):
    projects: SqlProjectRepository
    idempotency: SqlIdempotencyStore

    def _bind_repositories(self, connection: AsyncConnection) -> None:
        self.projects = SqlProjectRepository(connection, self.seen)
        self.idempotency = SqlIdempotencyStore(connection)
