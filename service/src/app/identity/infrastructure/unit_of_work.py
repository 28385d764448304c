from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.identity.infrastructure.repository import SqlUserRepository
from app.persistence.unit_of_work import SqlUnitOfWork


class SqlIdentityUnitOfWork(SqlUnitOfWork):
    users: SqlUserRepository

    def _bind_repositories(self, connection: AsyncConnection) -> None:
        self.users = SqlUserRepository(connection)
