"""Attacks from outside, through the API: the route x role matrix (IDOR included) and brute force.

JWT forgeries have their unit tests (test_tokens_and_passwords.py) and the stale-role attack
its API tests (test_security_review.py, H1); forwarded-header spoofing is M4 there.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry

from app.kernel.principal import Role
from app.main import create_app
from service.tests.builders import DEFAULT_PASSWORD, MakeUser, make_settings, unique_email

# Without a valid token (none, a garbage one, one logged out) every action is 401.
ALL_401 = dict.fromkeys(("me", "list", "get", "patch", "delete", "create", "role"), 401)
# caller -> expected status per action, on a project owned by "owner" and a user "target".
MATRIX: dict[str, dict[str, int]] = {
    "admin": {"me": 200, "list": 200, "get": 200, "patch": 200, "delete": 204, "create": 201, "role": 200},
    "manager": {"me": 200, "list": 200, "get": 200, "patch": 200, "delete": 204, "create": 201, "role": 403},
    "owner": {"me": 200, "list": 200, "get": 200, "patch": 200, "delete": 403, "create": 201, "role": 403},
    # IDOR: another member gets 404 for the owner's project, as if it did not exist.
    "other": {"me": 200, "list": 200, "get": 404, "patch": 404, "delete": 403, "create": 201, "role": 403},
    "anonymous": ALL_401,
    "garbage": ALL_401,
    "logged-out": ALL_401,
}


async def test_every_route_answers_every_role_as_designed(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin, manager = await make_user(Role.ADMIN), await make_user(Role.MANAGER)
    owner, other, target, leaver = await make_user(), await make_user(), await make_user(), await make_user()
    assert (await client.post("/api/v1/auth/logout", headers=leaver.headers)).status_code == 204
    headers = {
        "admin": admin.headers,
        "manager": manager.headers,
        "owner": owner.headers,
        "other": other.headers,
        "anonymous": {},
        "garbage": {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
        "logged-out": leaver.headers,
    }

    async def new_project() -> str:
        created = await client.post(
            "/api/v1/projects", json={"name": "Owned", "type": "internal"}, headers=owner.headers
        )
        return str(created.json()["id"])

    for caller, expected in MATRIX.items():
        project = await new_project()
        auth = headers[caller]
        actual = {
            "me": (await client.get("/api/v1/users/me", headers=auth)).status_code,
            "list": (await client.get("/api/v1/projects", headers=auth)).status_code,
            "get": (await client.get(f"/api/v1/projects/{project}", headers=auth)).status_code,
            "patch": (
                await client.patch(f"/api/v1/projects/{project}", json={"status": "active"}, headers=auth)
            ).status_code,
            "delete": (await client.delete(f"/api/v1/projects/{project}", headers=auth)).status_code,
            "create": (
                await client.post("/api/v1/projects", json={"name": "Mine", "type": "client"}, headers=auth)
            ).status_code,
            "role": (
                await client.patch(f"/api/v1/users/{target.id}/role", json={"role": "member"}, headers=auth)
            ).status_code,
        }
        assert actual == expected, caller
    # A member's list holds only their own projects; a missing id is 404 for everyone.
    listed = (await client.get("/api/v1/projects", headers=other.headers)).json()["data"]
    assert {p["ownerId"] for p in listed} == {other.id}
    for auth in (admin.headers, owner.headers):
        assert (await client.get(f"/api/v1/projects/{uuid.uuid4()}", headers=auth)).status_code == 404


BRUTE_FORCE_LIMITS = {
    "rate_limit_enabled": True,
    "rate_limit_login": "3/minute",
    "rate_limit_login_account": "5/minute",
    "rate_limit_write": "100/minute",
    "rate_limit_read": "100/minute",
    "rate_limit_register": "100/minute",
}


def _from(app: object, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 1))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://t")


@pytest.mark.parametrize("with_token", [False, True], ids=["no-token", "with-token"])
async def test_brute_force_on_one_account_is_stopped_per_ip_and_per_account(
    sqlite_url: str, with_token: bool
) -> None:
    application = create_app(make_settings(sqlite_url, **BRUTE_FORCE_LIMITS), registry=CollectorRegistry())
    async with LifespanManager(application), _from(application, "10.7.0.1") as setup:
        victim, own = unique_email(), unique_email()
        for email in (victim, own):
            await setup.post(
                "/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": "V"}
            )
        token = (
            await setup.post("/api/v1/auth/login", json={"email": own, "password": DEFAULT_PASSWORD})
        ).json()
        auth = {"Authorization": f"Bearer {token['accessToken']}"} if with_token else {}
        guess = {"email": victim, "password": "not the password!"}

        async with _from(application, "10.7.1.1") as first:
            per_ip = [
                (await first.post("/api/v1/auth/login", json=guess, headers=auth)).status_code
                for _ in range(4)
            ]
        assert per_ip == [401, 401, 401, 429]
        # From other addresses the account's own budget (5 attempts, 3 spent) runs out next.
        statuses = []
        for i in range(2, 5):
            async with _from(application, f"10.7.{i}.1") as elsewhere:
                statuses.append(
                    (await elsewhere.post("/api/v1/auth/login", json=guess, headers=auth)).status_code
                )
        assert statuses == [401, 401, 429]
        # While limited, even the right password is refused.
        async with _from(application, "10.7.9.1") as fresh:
            right = await fresh.post(
                "/api/v1/auth/login", json={"email": victim, "password": DEFAULT_PASSWORD}
            )
        assert right.status_code == 429
