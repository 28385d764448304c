from __future__ import annotations

import uuid

import pytest

from app.identity.application.services import ChangePassword, IdentityService, RegisterUser
from app.identity.domain.errors import (
    CurrentPasswordMismatchError,
    EmailAlreadyRegisteredError,
    InvalidCredentialsError,
    LastAdminError,
    UserNotFoundError,
)
from app.identity.domain.models import User
from app.identity.infrastructure.revocation import TokenDenylist
from app.kernel.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from app.kernel.principal import Principal, Role
from service.tests.builders import DEFAULT_PASSWORD, unique_email
from service.tests.unit.fakes import FakeHasher, FakeTokens, FakeUnitOfWork


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def hasher() -> FakeHasher:
    return FakeHasher()


@pytest.fixture
def identity(uow: FakeUnitOfWork, hasher: FakeHasher, tokens: FakeTokens) -> IdentityService:
    # The real denylist, in its process-memory form (no Redis here; Redis has its own tests).
    return IdentityService(uow, hasher, tokens, TokenDenylist(None, token_ttl_seconds=60))


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens()


async def a_registered(identity: IdentityService, role: Role = Role.MEMBER) -> User:
    return await identity.register(
        RegisterUser(email=unique_email(), password=DEFAULT_PASSWORD, name="Someone", role=role)
    )


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
    [
        ("short", "at least 12"),
        ("carol@example.com", "not be the email"),
        ("x" * 129, "at most 128"),
        (" " * 12, "only whitespace"),
        ("\x00" * 12, "control characters"),
        ("a" * 12, "too common"),  # one repeated character
        ("passwordpassword", "too common"),  # a common password repeated
        ("Password1234!", "too common"),  # a common password padded
        ("qazwsxedcrfv", "too common"),  # in the shipped list
        ("abababababab", "too common"),
        ("\u2764\ufe0f" * 6, "too common"),  # a repeated emoji
        ("aabbaabbabab", "different characters"),
        ("carolcarol12", "too common"),  # the local part repeated is a repeat, too
        ("carol-2024!!", "not be the email"),  # the local part, padded
        ("e\u0301" * 6 + "x", "at least 12"),  # 13 code points, 7 after NFKC
    ],
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
    assert token.token.startswith(f"{user.id}:member:0:")


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
    admin = await a_registered(identity, Role.ADMIN)
    manager = await a_registered(identity, Role.MANAGER)
    user = await a_registered(identity)
    with pytest.raises(PermissionDeniedError):
        await identity.change_role(manager.principal, user.id, Role.ADMIN)
    changed = await identity.change_role(admin.principal, user.id, Role.MANAGER)
    assert changed.role is Role.MANAGER
    assert (await identity.get_user(user.id)).role is Role.MANAGER


async def test_role_changes_are_decided_on_the_actors_role_in_the_database(identity: IdentityService) -> None:
    """H1: a principal that still says admin (an old token) is not enough once demoted."""
    first = await a_registered(identity, Role.ADMIN)
    second = await a_registered(identity, Role.ADMIN)
    await identity.change_role(first.principal, second.id, Role.MEMBER)
    stale_admin = Principal(second.id, Role.ADMIN)
    with pytest.raises(PermissionDeniedError):
        await identity.change_role(stale_admin, second.id, Role.ADMIN)
    with pytest.raises(PermissionDeniedError):
        await identity.change_role(stale_admin, first.id, Role.MEMBER)
    assert (await identity.get_user(second.id)).role is Role.MEMBER
    assert (await identity.get_user(first.id)).role is Role.ADMIN


async def test_the_last_admin_cannot_be_demoted(identity: IdentityService) -> None:
    """L2: zero admins is refused; with a second admin the demotion goes through."""
    admin = await a_registered(identity, Role.ADMIN)
    with pytest.raises(LastAdminError):
        await identity.change_role(admin.principal, admin.id, Role.MEMBER)
    assert (await identity.get_user(admin.id)).role is Role.ADMIN
    other = await a_registered(identity, Role.ADMIN)
    await identity.change_role(admin.principal, admin.id, Role.MEMBER)
    assert (await identity.get_user(other.id)).role is Role.ADMIN


async def test_a_role_change_revokes_the_users_tokens(identity: IdentityService, tokens: FakeTokens) -> None:
    admin = await a_registered(identity, Role.ADMIN)
    user = await a_registered(identity)
    _, issued = await identity.authenticate(user.email, DEFAULT_PASSWORD)
    assert await identity.principal_for(tokens.verify(issued.token)) == user.principal
    await identity.change_role(admin.principal, user.id, Role.MANAGER)
    with pytest.raises(AuthenticationError):
        await identity.principal_for(tokens.verify(issued.token))
    _, fresh = await identity.authenticate(user.email, DEFAULT_PASSWORD)
    assert (await identity.principal_for(tokens.verify(fresh.token))).role is Role.MANAGER


async def test_privileged_tokens_are_checked_against_the_database(
    identity: IdentityService, tokens: FakeTokens
) -> None:
    """Even with an empty revocation list, a stale version or a missing user is refused."""
    manager = await a_registered(identity, Role.MANAGER)
    _, issued = await identity.authenticate(manager.email, DEFAULT_PASSWORD)
    verified = tokens.verify(issued.token)
    assert await identity.principal_for(verified) == manager.principal
    forged_version = tokens.verify(f"{manager.id}:manager:7:jti")
    with pytest.raises(AuthenticationError):
        await identity.principal_for(forged_version)
    ghost = tokens.verify(f"{uuid.uuid4()}:admin:0:jti")
    with pytest.raises(AuthenticationError):
        await identity.principal_for(ghost)


async def test_logout_revokes_only_that_token(identity: IdentityService, tokens: FakeTokens) -> None:
    user = await a_registered(identity)
    _, first = await identity.authenticate(user.email, DEFAULT_PASSWORD)
    _, second = await identity.authenticate(user.email, DEFAULT_PASSWORD)
    await identity.logout(tokens.verify(first.token))
    with pytest.raises(AuthenticationError):
        await identity.principal_for(tokens.verify(first.token))
    assert await identity.principal_for(tokens.verify(second.token)) == user.principal


async def test_a_password_change_checks_the_current_one_and_ends_every_session(
    identity: IdentityService, tokens: FakeTokens
) -> None:
    user = await a_registered(identity)
    _, old = await identity.authenticate(user.email, DEFAULT_PASSWORD)
    new_password = "a different long passphrase"
    with pytest.raises(CurrentPasswordMismatchError):
        await identity.change_password(user.principal, ChangePassword("wrong password!!", new_password))
    with pytest.raises(InvalidInputError):
        await identity.change_password(user.principal, ChangePassword(DEFAULT_PASSWORD, "password1234"))
    with pytest.raises(InvalidInputError):
        await identity.change_password(user.principal, ChangePassword(DEFAULT_PASSWORD, DEFAULT_PASSWORD))
    await identity.change_password(user.principal, ChangePassword(DEFAULT_PASSWORD, new_password))
    with pytest.raises(AuthenticationError):
        await identity.principal_for(tokens.verify(old.token))
    with pytest.raises(InvalidCredentialsError):
        await identity.authenticate(user.email, DEFAULT_PASSWORD)
    _, fresh = await identity.authenticate(user.email, new_password)
    assert await identity.principal_for(tokens.verify(fresh.token)) == user.principal


async def test_passwords_are_hashed_in_nfkc_form_and_older_hashes_still_verify(
    identity: IdentityService, uow: FakeUnitOfWork
) -> None:
    email = unique_email()
    decomposed = "cafe\u0301 au lait, s'il vous plait"
    user = await identity.register(RegisterUser(email=email, password=decomposed, name="N"))
    composed = "caf\u00e9 au lait, s'il vous plait"
    assert uow.users.rows[user.id].password_hash == f"fake${composed}"
    assert (await identity.authenticate(email, decomposed))[0].id == user.id
    # A hash made before normalisation (the raw form) still verifies.
    uow.users.rows[user.id].password_hash = f"fake${decomposed}"
    assert (await identity.authenticate(email, decomposed))[0].id == user.id


async def test_missing_users_raise_not_found(identity: IdentityService) -> None:
    admin = await a_registered(identity, Role.ADMIN)
    with pytest.raises(UserNotFoundError):
        await identity.get_user(uuid.uuid4())
    with pytest.raises(UserNotFoundError):
        await identity.change_role(admin.principal, uuid.uuid4(), Role.MEMBER)


async def test_bootstrap_admin_is_created_once(identity: IdentityService, uow: FakeUnitOfWork) -> None:
    assert await identity.ensure_bootstrap_admin("root@example.com", DEFAULT_PASSWORD) is True
    assert await identity.ensure_bootstrap_admin("other@example.com", DEFAULT_PASSWORD) is False
    admins = [u for u in uow.users.rows.values() if u.role is Role.ADMIN]
    assert [a.email for a in admins] == ["root@example.com"]


async def test_bootstrap_admin_does_not_take_over_an_existing_member_email(identity: IdentityService) -> None:
    await identity.register(RegisterUser(email="taken@example.com", password=DEFAULT_PASSWORD, name="G"))
    assert await identity.ensure_bootstrap_admin("taken@example.com", DEFAULT_PASSWORD) is False
