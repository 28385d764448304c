"""Identity use cases. Each opens one unit of work and commits at most once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.core.clock import utcnow
from app.core.errors import PermissionDeniedError
from app.core.principal import Principal, Role
from app.identity.application.ports import (
    IdentityUnitOfWorkFactory,
    IssuedToken,
    PasswordHasher,
    TokenService,
)
from app.identity.domain.errors import (
    EmailAlreadyRegisteredError,
    InvalidCredentialsError,
    UserNotFoundError,
)
from app.identity.domain.models import User, check_password_policy, normalize_email


@dataclass(frozen=True)
class RegisterUser:
    email: str
    password: str
    name: str
    role: Role = Role.MEMBER


class IdentityService:
    def __init__(self, uow: IdentityUnitOfWorkFactory, hasher: PasswordHasher, tokens: TokenService) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._dummy_hash: str | None = None

    async def register(self, command: RegisterUser) -> User:
        email = normalize_email(command.email)
        check_password_policy(command.password, email)
        password_hash = await self._hasher.hash(command.password)
        now = utcnow()
        user = User(
            id=uuid.uuid4(),
            email=email,
            name=command.name.strip(),
            password_hash=password_hash,
            role=command.role,
            created_at=now,
            updated_at=now,
        )
        async with self._uow() as uow:
            if await uow.users.get_by_email(email) is not None:
                raise EmailAlreadyRegisteredError
            await uow.users.add(user)  # a concurrent twin still hits the unique index
            await uow.commit()
        return user

    async def authenticate(self, email: str, password: str) -> tuple[User, IssuedToken]:
        async with self._uow() as uow:
            user = await uow.users.get_by_email(normalize_email(email))
        if user is None:
            # Spend the same hashing time as for a real user: no timing oracle on emails.
            await self._hasher.verify(password, await self._get_dummy_hash())
            raise InvalidCredentialsError
        matches, _ = await self._hasher.verify(password, user.password_hash)
        if not matches:
            raise InvalidCredentialsError
        return user, self._tokens.issue(user.principal)

    async def get_user(self, user_id: uuid.UUID) -> User:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFoundError
        return user

    async def change_role(self, actor: Principal, user_id: uuid.UUID, role: Role) -> User:
        if actor.role is not Role.ADMIN:
            raise PermissionDeniedError("Only an admin can change roles")
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFoundError
            user.change_role(role, utcnow())
            await uow.users.save_role(user)
            await uow.commit()
        return user

    async def ensure_bootstrap_admin(self, email: str, password: str, name: str = "Admin") -> bool:
        """Create the first admin unless one exists. True when a user was created."""
        async with self._uow() as uow:
            if await uow.users.any_admin():
                return False
        try:
            await self.register(RegisterUser(email=email, password=password, name=name, role=Role.ADMIN))
        except EmailAlreadyRegisteredError:
            return False
        return True

    async def _get_dummy_hash(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash(uuid.uuid4().hex)
        return self._dummy_hash
