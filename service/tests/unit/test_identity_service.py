from __future__ import annotations

import uuid

import pytest

from app.core.errors import InvalidInputError, PermissionDeniedError
from app.core.principal import Role
from app.identity.application.services import IdentityService, RegisterUser
from app.identity.domain.errors import (
    EmailAlreadyRegisteredError,
    InvalidCredentialsError,
    UserNotFoundError,
)
from service.tests.builders import DEFAULT_PASSWORD, a_principal, unique_email
from service.tests.unit.fakes import FakeHasher, FakeTokens, FakeUnitOfWork


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def hasher() -> FakeHasher:
    return FakeHasher()


@pytest.fixture
def identity(uow: FakeUnitOfWork, hasher: FakeHasher) -> IdentityService:
    return IdentityService(uow, hasher, FakeTokens())


async def test_register_creates_a_member_with_a_hashed_normalized_email(
    identity: IdentityService, uow: FakeUnitOfWork
) -> None:
    user = await identity.register(
        RegisterUser(email="  Alice@Example.COM ", password=DEFAULT_PASSWORD, name="A")
    )
    assert user.email == "alice@example.com"
    assert user.role is Role.MEMBER
    assert user.password_hash != DEFAULT_PASSWORD
    assert uow.commits == 1
    assert (await uow.users.get(user.id)) == user


async def test_register_refuses_a_duplicate_email_case_insensitively(identity: IdentityService) -> None:
    await identity.register(RegisterUser(email="bob@example.com", password=DEFAULT_PASSWORD, name="B"))
    with pytest.raises(EmailAlreadyRegisteredError):
        await identity.register(RegisterUser(email="BOB@example.com", password=DEFAULT_PASSWORD, name="B"))


@pytest.mark.parametrize(
    ("password", "problem"),
    [("short", "at least 12"), ("carol@example.com", "not be the email"), ("x" * 129, "at most 128")],
)
async def test_register_enforces_the_password_policy(
    identity: IdentityService, uow: FakeUnitOfWork, password: str, problem: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await identity.register(RegisterUser(email="carol@example.com", password=password, name="C"))
    assert any(problem in message for message in caught.value.details["password"])
    assert uow.commits == 0


async def test_authenticate_issues_a_token_for_the_right_password(identity: IdentityService) -> None:
    email = unique_email()
    user = await identity.register(RegisterUser(email=email, password=DEFAULT_PASSWORD, name="D"))
    authenticated, token = await identity.authenticate(email.upper(), DEFAULT_PASSWORD)
    assert authenticated.id == user.id
    assert token.token == f"{user.id}:member"


async def test_wrong_password_and_unknown_email_fail_alike_and_both_hash(
    identity: IdentityService, hasher: FakeHasher
) -> None:
    email = unique_email()
    await identity.register(RegisterUser(email=email, password=DEFAULT_PASSWORD, name="E"))
    with pytest.raises(InvalidCredentialsError) as wrong_password:
        await identity.authenticate(email, "not the password at all")
    with pytest.raises(InvalidCredentialsError) as unknown_email:
        await identity.authenticate(unique_email(), DEFAULT_PASSWORD)
    assert wrong_password.value.message == unknown_email.value.message
    # Both paths verify a hash, so they cost about the same time.
    assert hasher.verifications == 2


async def test_only_an_admin_changes_roles(identity: IdentityService) -> None:
    user = await identity.register(RegisterUser(email=unique_email(), password=DEFAULT_PASSWORD, name="F"))
    with pytest.raises(PermissionDeniedError):
        await identity.change_role(a_principal(Role.MANAGER), user.id, Role.ADMIN)
    changed = await identity.change_role(a_principal(Role.ADMIN), user.id, Role.MANAGER)
    assert changed.role is Role.MANAGER
    assert (await identity.get_user(user.id)).role is Role.MANAGER


async def test_missing_users_raise_not_found(identity: IdentityService) -> None:
    with pytest.raises(UserNotFoundError):
        await identity.get_user(uuid.uuid4())
    with pytest.raises(UserNotFoundError):
        await identity.change_role(a_principal(Role.ADMIN), uuid.uuid4(), Role.MEMBER)


async def test_bootstrap_admin_is_created_once(identity: IdentityService, uow: FakeUnitOfWork) -> None:
    assert await identity.ensure_bootstrap_admin("root@example.com", DEFAULT_PASSWORD) is True
    assert await identity.ensure_bootstrap_admin("other@example.com", DEFAULT_PASSWORD) is False
    admins = [u for u in uow.users.rows.values() if u.role is Role.ADMIN]
    assert [a.email for a in admins] == ["root@example.com"]


async def test_bootstrap_admin_does_not_take_over_an_existing_member_email(identity: IdentityService) -> None:
    await identity.register(RegisterUser(email="taken@example.com", password=DEFAULT_PASSWORD, name="G"))
    assert await identity.ensure_bootstrap_admin("taken@example.com", DEFAULT_PASSWORD) is False
