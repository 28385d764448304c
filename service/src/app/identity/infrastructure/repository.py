from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.principal import Role
from app.identity.domain.errors import EmailAlreadyRegisteredError
from app.identity.domain.models import User
from app.identity.infrastructure.tables import users


def _to_user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        password_hash=row.password_hash,
        role=Role(row.role),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlUserRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def add(self, user: User) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(users).values(
                        id=user.id,
                        email=user.email,
                        name=user.name,
                        password_hash=user.password_hash,
                        role=user.role.value,
                        created_at=user.created_at,
                        updated_at=user.updated_at,
                    )
                )
        except IntegrityError as exc:
            raise EmailAlreadyRegisteredError from exc

    async def get(self, user_id: uuid.UUID) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.id == user_id))).first()
        return _to_user(row) if row else None

    async def get_by_email(self, email: str) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.email == email))).first()
        return _to_user(row) if row else None

    async def save_role(self, user: User) -> None:
        await self._conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(role=user.role.value, updated_at=user.updated_at)
        )

    async def any_admin(self) -> bool:
        query = select(exists().where(users.c.role == Role.ADMIN.value))
        return bool((await self._conn.execute(query)).scalar())
