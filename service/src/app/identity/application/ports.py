"""What the identity use cases need from the outside world."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from app.identity.domain.models import User
from app.kernel.principal import Principal
from app.kernel.unit_of_work import UnitOfWork


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...
    async def get(self, user_id: uuid.UUID) -> User | None: ...
    async def get_by_email(self, email: str) -> User | None: ...
    async def lock_admins(self) -> int: ...
    async def save_role(self, user: User) -> bool:
        """False, and nothing written, when the change would leave no admin."""
        ...

    async def save_password(self, user: User) -> None: ...
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


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature and claims checked out; revocation is checked separately."""

    principal: Principal
    token_id: str  # jti
    expires_at: float  # unix seconds
    version: int  # the user's token_version when it was issued


class TokenService(Protocol):
    def issue(self, principal: Principal, version: int) -> IssuedToken: ...

    def verify(self, token: str) -> VerifiedToken:
        """Raises AuthenticationError for any invalid, expired or foreign token."""
        ...


class TokenRevocations(Protocol):
    """Server-side end of sessions before their tokens expire (logout, password or role change)."""

    async def revoke(self, token: VerifiedToken) -> None: ...

    async def revoke_versions_below(self, user_id: uuid.UUID, version: int) -> None:
        """Every token of the user issued at an older token_version is refused from now on."""
        ...

    async def is_revoked(self, token: VerifiedToken) -> bool: ...


class IdentityUnitOfWorkFactory(Protocol):
    def __call__(self) -> IdentityUnitOfWork: ...
