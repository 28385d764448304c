"""What the identity use cases need from the outside world."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from app.core.principal import Principal
from app.core.unit_of_work import UnitOfWork
from app.identity.domain.models import User


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...
    async def get(self, user_id: uuid.UUID) -> User | None: ...
    async def get_by_email(self, email: str) -> User | None: ...
    async def save_role(self, user: User) -> None: ...
    async def any_admin(self) -> bool: ...


class IdentityUnitOfWork(UnitOfWork, Protocol):
    @property
    def users(self) -> UserRepository: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """(matches, a new hash when the stored one uses outdated parameters)."""
        ...


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


class TokenService(Protocol):
    def issue(self, principal: Principal) -> IssuedToken: ...

    def verify(self, token: str) -> Principal:
        """Raises AuthenticationError for any invalid, expired or foreign token."""
        ...


class IdentityUnitOfWorkFactory(Protocol):
    def __call__(self) -> IdentityUnitOfWork: ...
