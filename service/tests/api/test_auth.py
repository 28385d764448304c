from __future__ import annotations

import httpx

from app.kernel.principal import Role
from service.tests.builders import DEFAULT_PASSWORD, MakeUser, unique_email

ERROR_FIELDS = {"statusCode", "message", "error", "details", "timestamp", "path", "requestId"}


async def test_register_returns_the_user_in_camel_case(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": "Ada"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "role", "createdAt"}
    assert (body["email"], body["name"], body["role"]) == (email, "Ada", "member")


async def test_duplicate_email_is_409(client: httpx.AsyncClient) -> None:
    payload = {"email": unique_email(), "password": DEFAULT_PASSWORD, "name": "Bo"}
    assert (await client.post("/api/v1/auth/register", json=payload)).status_code == 201
    response = await client.post("/api/v1/auth/register", json={**payload, "email": payload["email"].upper()})
    assert response.status_code == 409
    assert set(response.json()) == ERROR_FIELDS


async def test_weak_password_is_422_with_field_details(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": email, "name": "C"}
    )
    assert response.status_code == 422
    assert any("must not be the email address" in m for m in response.json()["details"]["password"])


async def test_unknown_fields_and_bad_emails_are_422(client: httpx.AsyncClient) -> None:
    extra = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": DEFAULT_PASSWORD, "name": "D", "role": "admin"},
    )
    assert extra.status_code == 422
    assert extra.json()["details"] == {"role": ["unknown field"]}
    bad_email = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": DEFAULT_PASSWORD, "name": "D"}
    )
    assert bad_email.status_code == 422
    assert "email" in bad_email.json()["details"]


async def test_login_sets_a_hardened_cookie_and_returns_the_token(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await client.post(
        "/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": "E"}
    )
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["tokenType"] == "bearer"
    assert body["expiresIn"] == 3600
    cookie = response.headers["set-cookie"].lower()
    assert f"access_token={body['accessToken'].lower()}" in cookie
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    # The cookie alone authenticates.
    me = await client.get("/api/v1/users/me")
    assert me.status_code == 200 and me.json()["email"] == email


async def test_wrong_password_and_unknown_email_get_the_same_401(client: httpx.AsyncClient) -> None:
    email = unique_email()
    await client.post(
        "/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": "F"}
    )
    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "wrong password!!"})
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": DEFAULT_PASSWORD}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["message"] == unknown.json()["message"] == "Invalid email or password"
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_logout_clears_the_cookie(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    assert (await client.get("/api/v1/users/me")).status_code == 200
    response = await client.post("/api/v1/auth/logout")
    assert response.status_code == 204
    assert (
        'access_token=""' in response.headers["set-cookie"]
        or "max-age=0" in response.headers["set-cookie"].lower()
    )
    assert (await client.get("/api/v1/users/me")).status_code == 401


async def test_me_requires_a_valid_token(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    assert (await client.get("/api/v1/users/me")).status_code == 401
    bad = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    user = await make_user(Role.MANAGER)
    me = await client.get("/api/v1/users/me", headers=user.headers)
    assert me.json()["role"] == "manager"


async def test_only_admins_change_roles(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin, manager, member = await make_user(Role.ADMIN), await make_user(Role.MANAGER), await make_user()
    url = f"/api/v1/users/{member.id}/role"
    for caller in (manager, member):
        denied = await client.patch(url, json={"role": "manager"}, headers=caller.headers)
        assert denied.status_code == 403
    changed = await client.patch(url, json={"role": "manager"}, headers=admin.headers)
    assert changed.status_code == 200 and changed.json()["role"] == "manager"
    assert (await client.patch(url, json={"role": "owner"}, headers=admin.headers)).status_code == 422
    missing = await client.patch(
        "/api/v1/users/00000000-0000-0000-0000-000000000000/role",
        json={"role": "member"},
        headers=admin.headers,
    )
    assert missing.status_code == 404
