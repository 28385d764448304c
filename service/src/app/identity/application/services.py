"""Identity use cases. Each opens one unit of work and commits at most once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.identity.application.ports import (
    IdentityUnitOfWorkFactory,
    IssuedToken,
    PasswordHasher,
    TokenRevocations,
    TokenService,
    VerifiedToken,
)
from app.identity.domain.errors import (
    CurrentPasswordMismatchError,
    EmailAlreadyRegisteredError,
    InvalidCredentialsError,
    LastAdminError,
    UserNotFoundError,
)
from app.identity.domain.models import User, normalize_email
from app.identity.domain.passwords import check_password_policy, normalize_password
from app.kernel.clock import utcnow
from app.kernel.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from app.kernel.principal import Principal, Role


@dataclass(frozen=True)
class RegisterUser:
    email: str
    password: str
    name: str
    role: Role = Role.MEMBER


@dataclass(frozen=True)
class ChangePassword:
    current_password: str
    new_password: str


class IdentityService:
    def __init__(
        self,
        uow: IdentityUnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenService,
        revocations: TokenRevocations,
    ) -> None:
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._revocations = revocations
        self._dummy_hash: str | None = None

    async def prepare(self) -> None:
        """At startup: the dummy hash an unknown email is checked against, so the first such
        login costs what every other does (no one-shot timing signal)."""
        await self._get_dummy_hash()

    async def register(self, command: RegisterUser) -> User:
        email = normalize_email(command.email)
        check_password_policy(command.password, email=email, name=command.name)
        password_hash = await self._hasher.hash(normalize_password(command.password))
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
        if not await self._password_matches(user, password):
            raise InvalidCredentialsError
        return user, self._tokens.issue(user.principal, user.token_version)

    async def _password_matches(self, user: User, password: str) -> bool:
        normalized = normalize_password(password)
        matches, _ = await self._hasher.verify(normalized, user.password_hash)
        if not matches and normalized != password:
            # Hashed before passwords were NFKC-normalised (only differs for such passwords).
            matches, _ = await self._hasher.verify(password, user.password_hash)
        return matches

    async def principal_for(self, token: VerifiedToken) -> Principal:
        """The caller a verified token stands for now, or AuthenticationError.

        Refused when revoked (logout, password or role change). A privileged role in the
        token is never taken on trust: the user's current role and token version are read
        from the database, so a demoted admin or manager loses the rights at once, even if
        the revocation list (Redis) is unreachable. A member token carries no rights that a
        stale role could extend, and is checked against the revocation list only.
        """
        if await self._revocations.is_revoked(token):
            raise AuthenticationError("Token has been revoked: log in again")
        if not token.principal.is_privileged:
            return token.principal
        async with self._uow() as uow:
            user = await uow.users.get(token.principal.user_id)
        if user is None or user.token_version != token.version:
            raise AuthenticationError("Token has been revoked: log in again")
        return user.principal

    async def logout(self, token: VerifiedToken) -> None:
        await self._revocations.revoke(token)

    async def change_password(self, actor: Principal, command: ChangePassword) -> None:
        """Check the current password, store the new one, end every session of the user."""
        async with self._uow() as uow:
            user = await uow.users.get(actor.user_id)
        if user is None:
            raise AuthenticationError("Token has been revoked: log in again")
        if not await self._password_matches(user, command.current_password):
            raise CurrentPasswordMismatchError
        check_password_policy(command.new_password, email=user.email, name=user.name)
        if normalize_password(command.new_password) == normalize_password(command.current_password):
            raise InvalidInputError(
                "Password does not meet the policy", {"newPassword": ["must differ from the current one"]}
            )
        password_hash = await self._hasher.hash(normalize_password(command.new_password))
        async with self._uow() as uow:
            current = await uow.users.get(actor.user_id)
            if current is None:
                raise AuthenticationError("Token has been revoked: log in again")
            current.change_password(password_hash, utcnow())
            await uow.users.save_password(current)
            await uow.commit()
        await self._revocations.revoke_versions_below(current.id, current.token_version)

    async def get_user(self, user_id: uuid.UUID) -> User:
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None:
            raise UserNotFoundError
        return user

    async def change_role(self, actor: Principal, user_id: uuid.UUID, role: Role) -> User:
        """Decided on the actor's role in the database, in the same transaction as the change.

        The user's sessions end (their tokens carry the old role); the last admin stays one.
        """
        async with self._uow() as uow:
            await uow.users.lock_admins()
            acting = await uow.users.get(actor.user_id)
            if acting is None or acting.role is not Role.ADMIN:
                raise PermissionDeniedError("Only an admin can change roles")
            user = await uow.users.get(user_id)
            if user is None:
                raise UserNotFoundError
            if user.role is role:
                return user  # nothing changes: the user's sessions stay
            user.change_role(role, utcnow())
            if not await uow.users.save_role(user):
                raise LastAdminError
            await uow.commit()
        await self._revocations.revoke_versions_below(user.id, user.token_version)
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
