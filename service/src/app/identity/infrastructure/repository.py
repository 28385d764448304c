from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.identity.domain.errors import EmailAlreadyRegisteredError
from app.identity.domain.models import User
from app.identity.infrastructure.tables import users
from app.kernel.principal import Role


def _to_user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        password_hash=row.password_hash,
        role=Role(row.role),
        created_at=row.created_at,
        updated_at=row.updated_at,
        token_version=row.token_version,
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
                        token_version=user.token_version,
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

    async def lock_admins(self) -> int:
        """How many admins there are, with their rows locked until the transaction ends.

        Two admins demoting each other at once are then serialized on PostgreSQL, so the
        second sees the first's change (no zero-admin race). SQLite has one writer at a time;
        its guard is the conditional UPDATE in save_role.
        """
        query = select(users.c.id).where(users.c.role == Role.ADMIN.value).with_for_update()
        return len((await self._conn.execute(query)).all())

    async def save_role(self, user: User) -> bool:
        """Store the new role and token version; False (nothing written) if it would leave no admin."""
        other_admins = (
            select(func.count())
            .select_from(users)
            .where(users.c.role == Role.ADMIN.value, users.c.id != user.id)
            .scalar_subquery()
        )
        statement = (
            update(users)
            .where(users.c.id == user.id)
            .values(role=user.role.value, updated_at=user.updated_at, token_version=user.token_version)
        )
        if user.role is not Role.ADMIN:
            statement = statement.where(or_(users.c.role != Role.ADMIN.value, other_admins > 0))
        result = await self._conn.execute(statement)
        return bool(result.rowcount)

    async def save_password(self, user: User) -> None:
        await self._conn.execute(
            update(users)
            .where(users.c.id == user.id)
            .values(
                password_hash=user.password_hash,
                updated_at=user.updated_at,
                token_version=user.token_version,
            )
        )

    async def any_admin(self) -> bool:
        query = select(exists().where(users.c.role == Role.ADMIN.value))
        return bool((await self._conn.execute(query)).scalar())
