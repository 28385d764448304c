"""Regression tests for the security review's findings, through the API, on SQLite and PostgreSQL.

Each test names its finding (../shared/reviews/security-review.md); each failed on the code
the review was made against (commit d425b0e).
"""

from __future__ import annotations

import base64
import unicodedata
import uuid
from typing import Any

import httpx
import orjson
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry
from sqlalchemy import delete, func, select, update

from app.identity.infrastructure.tables import users
from app.kernel.principal import Role
from app.main import create_app
from app.persistence.database import create_engine
from app.projects.infrastructure.tables import projects
from app.settings import Settings
from service.tests.builders import DEFAULT_PASSWORD, MakeUser, make_settings, unique_email

ME = "/api/v1/users/me"


async def _scalar(settings: Settings, query: Any) -> Any:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(query)).scalar()
    finally:
        await engine.dispose()


async def _execute(settings: Settings, statement: Any) -> None:
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()


async def _login(client: httpx.AsyncClient, email: str, password: str = DEFAULT_PASSWORD) -> str:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return str(response.json()["accessToken"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- H1, L2: roles decided on the database; the last admin stays ---------------------------


async def test_h1_a_demoted_admin_cannot_re_promote_themselves(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    admin = await make_user(Role.ADMIN)
    x = await make_user()
    promoted = await client.patch(f"/api/v1/users/{x.id}/role", json={"role": "admin"}, headers=admin.headers)
    assert promoted.status_code == 200
    x_admin_token = await _login(client, x.email)
    demoted = await client.patch(f"/api/v1/users/{x.id}/role", json={"role": "member"}, headers=admin.headers)
    assert demoted.status_code == 200
    # The review's sequence: X's admin token re-promotes X and demotes the other admin (both 200).
    again = await client.patch(
        f"/api/v1/users/{x.id}/role", json={"role": "admin"}, headers=_bearer(x_admin_token)
    )
    assert again.status_code == 401
    coup = await client.patch(
        f"/api/v1/users/{admin.id}/role", json={"role": "member"}, headers=_bearer(x_admin_token)
    )
    assert coup.status_code == 401
    assert (await client.get(ME, headers=_bearer(x_admin_token))).status_code == 401
    assert (await client.get(ME, headers=admin.headers)).json()["role"] == "admin"
    assert (await client.get(ME, headers=_bearer(await _login(client, x.email)))).json()["role"] == "member"


async def test_h1_privileged_tokens_follow_the_database_even_without_a_revocation_entry(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    """A role changed behind the API's back (no denylist entry): the manager token is refused."""
    manager = await make_user(Role.MANAGER)
    member = await make_user()
    created = await client.post(
        "/api/v1/projects", json={"name": "Project one", "type": "internal"}, headers=member.headers
    )
    project = created.json()["id"]
    await _execute(
        settings,
        update(users)
        .where(users.c.id == uuid.UUID(manager.id))
        .values(role="member", token_version=users.c.token_version + 1),
    )
    assert (await client.delete(f"/api/v1/projects/{project}", headers=manager.headers)).status_code == 401
    assert (await client.get(f"/api/v1/projects/{project}", headers=member.headers)).status_code == 200


async def test_l2_the_last_admin_cannot_demote_themselves(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    admin = await make_user(Role.ADMIN)
    response = await client.patch(
        f"/api/v1/users/{admin.id}/role", json={"role": "member"}, headers=admin.headers
    )
    assert response.status_code == 409
    assert "last admin" in response.json()["message"]
    assert (
        await _scalar(settings, select(func.count()).select_from(users).where(users.c.role == "admin")) == 1
    )
    second = await make_user(Role.ADMIN)
    assert (
        await client.patch(f"/api/v1/users/{admin.id}/role", json={"role": "member"}, headers=second.headers)
    ).status_code == 200


# --- L3: logout and password change end sessions server-side ------------------------------


async def test_l3_logout_revokes_the_token_as_bearer_and_as_cookie(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    other_session = await _login(client, user.email)
    login = await client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    token = login.json()["accessToken"]
    assert (await client.post("/api/v1/auth/logout")).status_code == 204  # by cookie
    client.cookies.clear()
    assert (await client.get(ME, headers=_bearer(token))).status_code == 401
    client.cookies.set("access_token", token)
    assert (await client.get(ME)).status_code == 401
    client.cookies.clear()
    # Only that session ended.
    assert (await client.get(ME, headers=_bearer(other_session))).status_code == 200
    assert (await client.post("/api/v1/auth/logout", headers=_bearer(other_session))).status_code == 204
    assert (await client.get(ME, headers=_bearer(other_session))).status_code == 401


async def test_l3_password_change_ends_every_session_and_needs_the_current_password(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    second = await _login(client, user.email)
    url = f"{ME}/password"
    new = "a brand new passphrase"
    wrong = await client.post(
        url, json={"currentPassword": "not it at all!", "newPassword": new}, headers=user.headers
    )
    assert wrong.status_code == 422
    assert wrong.json()["details"] == {"currentPassword": ["is incorrect"]}
    weak = await client.post(
        url, json={"currentPassword": DEFAULT_PASSWORD, "newPassword": "password1234"}, headers=user.headers
    )
    assert weak.status_code == 422 and "newPassword" not in weak.json()["details"]
    changed = await client.post(
        url, json={"currentPassword": DEFAULT_PASSWORD, "newPassword": new}, headers=user.headers
    )
    assert changed.status_code == 204
    for token in (user.token, second):
        assert (await client.get(ME, headers=_bearer(token))).status_code == 401
    old = await client.post("/api/v1/auth/login", json={"email": user.email, "password": DEFAULT_PASSWORD})
    assert old.status_code == 401
    assert (await client.get(ME, headers=_bearer(await _login(client, user.email, new)))).status_code == 200


# --- M1: tampered cursors ------------------------------------------------------------------


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


TAMPERED_CURSORS = [
    {"c": "2026-01-01T00:00:00+00:00", "i": 1},
    {"c": "0001-01-01T00:00:00+01:00", "i": "00000000-0000-0000-0000-000000000001"},
    {"c": "9999-12-31T23:59:59-01:00", "i": "00000000-0000-0000-0000-000000000001"},
]


async def test_m1_a_tampered_cursor_is_422(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    for payload in TAMPERED_CURSORS:
        response = await client.get(
            "/api/v1/projects", params={"cursor": _cursor(payload)}, headers=user.headers
        )
        assert response.status_code == 422, payload
        assert response.json()["details"] == {"cursor": ["is not a valid page cursor"]}


# --- M2, L6: one text type in every field, the same on both backends -----------------------

BAD_TEXT = {
    "nul": "ab\u0000cd",
    "escape": "ab\u001bcd",
    "delete": "ab\u007fcd",
    "c1-control": "ab\u0085cd",
    "bidi-override": "\u202egnp.exe",
    "only-spaces": "    ",
    "only-zero-width": "\u200b\u200b\u200b",
    "private-use": "ab\ue000cd",
    "noncharacter": "ab\uffffcd",
}


async def test_m2_bad_text_is_422_in_every_field_and_nothing_is_stored(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user()
    project = (
        await client.post("/api/v1/projects", json={"name": "Fine", "type": "internal"}, headers=user.headers)
    ).json()
    users_before = await _scalar(settings, select(func.count()).select_from(users))
    projects_before = await _scalar(settings, select(func.count()).select_from(projects))
    for value in BAD_TEXT.values():
        attempts = [
            ("POST", "/api/v1/auth/login", {"email": value, "password": DEFAULT_PASSWORD}, {}),
            ("POST", "/api/v1/auth/login", {"email": user.email, "password": value}, {}),
            (
                "POST",
                "/api/v1/auth/register",
                {"email": unique_email(), "password": DEFAULT_PASSWORD, "name": value},
                {},
            ),
            (
                "POST",
                "/api/v1/auth/register",
                {"email": f"x{value}@example.com", "password": DEFAULT_PASSWORD, "name": "N"},
                {},
            ),
            ("POST", "/api/v1/projects", {"name": value, "type": "internal"}, user.headers),
            (
                "POST",
                "/api/v1/projects",
                {"name": "Okay", "description": value, "type": "internal"},
                user.headers,
            ),
            (
                "POST",
                "/api/v1/projects",
                {"name": value, "type": "internal"},
                {**user.headers, "Idempotency-Key": str(uuid.uuid4())},
            ),
            ("PATCH", f"/api/v1/projects/{project['id']}", {"name": value}, user.headers),
            ("PATCH", f"/api/v1/projects/{project['id']}", {"description": value}, user.headers),
            (
                "POST",
                f"{ME}/password",
                {"currentPassword": DEFAULT_PASSWORD, "newPassword": value},
                user.headers,
            ),
        ]
        for method, url, body, headers in attempts:
            response = await client.request(method, url, json=body, headers=headers)
            assert response.status_code == 422, (method, url, body, response.text)
    assert await _scalar(settings, select(func.count()).select_from(users)) == users_before
    assert await _scalar(settings, select(func.count()).select_from(projects)) == projects_before
    unchanged = (await client.get(f"/api/v1/projects/{project['id']}", headers=user.headers)).json()
    assert unchanged == project
    assert (await client.get(ME, headers=user.headers)).status_code == 200  # the password did not change


async def test_l6_names_are_checked_after_stripping(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": unique_email(), "password": DEFAULT_PASSWORD, "name": " "}
    )
    assert response.status_code == 422
    spaced = await client.post(
        "/api/v1/auth/register",
        json={"email": unique_email(), "password": DEFAULT_PASSWORD, "name": "  Ada  "},
    )
    assert spaced.status_code == 201 and spaced.json()["name"] == "Ada"


async def test_descriptions_keep_line_breaks(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    text = "Line one\n\tLine two\r\n"
    created = await client.post(
        "/api/v1/projects",
        json={"name": "Lines", "description": text, "type": "client"},
        headers=user.headers,
    )
    assert created.status_code == 201 and created.json()["description"] == text


# --- L5, L7: password policy and one email normalisation -----------------------------------


async def test_l5_trivial_passwords_are_refused(client: httpx.AsyncClient) -> None:
    for password in (" " * 12, "aaaaaaaaaaaa", "Password123!", "qwerty123456"):
        response = await client.post(
            "/api/v1/auth/register", json={"email": unique_email(), "password": password, "name": "P"}
        )
        assert response.status_code == 422, password
        assert "password" in response.json()["details"]


async def test_l7_a_decomposed_email_logs_into_the_composed_account(client: httpx.AsyncClient) -> None:
    email = f"j\u00fcrgen-{uuid.uuid4().hex[:6]}@example.com"
    decomposed = unicodedata.normalize("NFD", email)
    assert decomposed != email
    registered = await client.post(
        "/api/v1/auth/register", json={"email": decomposed, "password": DEFAULT_PASSWORD, "name": "J"}
    )
    assert registered.status_code == 201 and registered.json()["email"] == email
    for spelling in (decomposed, email, f"  {email.upper()} "):
        login = await client.post(
            "/api/v1/auth/login", json={"email": spelling, "password": DEFAULT_PASSWORD}
        )
        assert login.status_code == 200, spelling


# --- L4, I1, I5, I9 ------------------------------------------------------------------------


async def test_l4_no_redirect_to_a_client_chosen_host(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    response = await client.get("/api/v1/projects/", headers={**user.headers, "Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers


async def test_i1_a_422_lists_a_bounded_number_of_fields(client: httpx.AsyncClient) -> None:
    body = {f"<img src=x onerror=alert({i})>": 1 for i in range(1300)}
    response = await client.post("/api/v1/auth/login", json=body)
    assert response.status_code in (413, 422)
    if response.status_code == 422:
        assert len(response.json()["details"]) <= 21
        assert len(response.content) < 4096


async def test_i5_a_token_of_a_deleted_user_is_401_not_500(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user()
    await _execute(settings, delete(users).where(users.c.id == uuid.UUID(user.id)))
    for headers in (user.headers, {**user.headers, "Idempotency-Key": "k-1"}):
        response = await client.post(
            "/api/v1/projects", json={"name": "Orphan", "type": "internal"}, headers=headers
        )
        assert response.status_code == 401, response.text


async def test_i9_a_trailing_dot_host_is_the_same_host(sqlite_url: str) -> None:
    application = create_app(
        make_settings(sqlite_url, trusted_hosts="api.example.com"), registry=CollectorRegistry()
    )
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            dotted = await http.get(ME, headers={"Host": "api.example.com."})
            other = await http.get(ME, headers={"Host": "evil.example."})
    assert dotted.status_code == 401  # past the Host check
    assert other.status_code == 400


# --- M3: the login budget is per IP whatever the token ------------------------------------


async def test_m3_a_token_does_not_lift_the_per_ip_login_budget(sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url,
        rate_limit_enabled=True,
        rate_limit_write="5/minute",
        rate_limit_login="100/minute",
        rate_limit_register="100/minute",
        rate_limit_read="100/minute",
    )
    application = create_app(settings, registry=CollectorRegistry())
    async with LifespanManager(application):
        helper = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application, client=("10.9.0.1", 1)), base_url="http://t"
        )
        attacker = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application, client=("10.9.0.2", 1)), base_url="http://t"
        )
        async with helper, attacker:
            email = unique_email()
            await helper.post(
                "/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD, "name": "T"}
            )
            token = (
                await helper.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
            ).json()["accessToken"]
            guesses = [
                (
                    await attacker.post(
                        "/api/v1/auth/login", json={"email": unique_email(), "password": "guess guess guess"}
                    )
                ).status_code
                for _ in range(5)
            ]
            assert guesses == [401] * 5
            with_token = await attacker.post(
                "/api/v1/auth/login",
                json={"email": unique_email(), "password": "guess guess guess"},
                headers=_bearer(token),
            )
            assert with_token.status_code == 429


# --- M4: forwarded headers, with the kit's own proxy settings --------------------------------


def _base_config_value(name: str) -> str:
    from kit.paths import K8S

    for line in (K8S / "base" / "config.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{name} is not in k8s/base/config.env")


async def test_m4_forwarded_for_counts_only_from_the_gateway_and_only_its_own_entry(sqlite_url: str) -> None:
    """The overlays' FORWARDED_ALLOW_IPS (edge.proxy_cidrs): a gateway that appends the peer
    to a client-sent X-Forwarded-For gives the client no say in its bucket; any other peer's
    header is ignored; the base config believes nobody."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from kit.environments import load

    gateway_cidrs = ",".join(load().gateway_proxy_cidrs)
    assert gateway_cidrs and "*" not in gateway_cidrs
    settings = make_settings(sqlite_url, rate_limit_enabled=True, rate_limit_read="3/minute")
    application = create_app(settings, registry=CollectorRegistry())

    def peer(app: Any, address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 1)), base_url="http://t"
        )

    async with LifespanManager(application):
        behind_gateway = ProxyHeadersMiddleware(application, trusted_hosts=gateway_cidrs)
        base_only = ProxyHeadersMiddleware(
            application, trusted_hosts=_base_config_value("FORWARDED_ALLOW_IPS")
        )
        async with peer(behind_gateway, "10.42.0.9") as gateway, peer(behind_gateway, "192.0.2.50") as direct:
            # The client rotates what it sends; the gateway appends the address it saw.
            spoofed = [
                (
                    await gateway.get(ME, headers={"X-Forwarded-For": f"203.0.113.{i}, 198.51.100.7"})
                ).status_code
                for i in range(4)
            ]
            assert spoofed == [401, 401, 401, 429]
            rotating = [
                (await direct.get(ME, headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
                for i in range(20, 24)
            ]
            assert rotating == [401, 401, 401, 429]
        async with peer(base_only, "10.42.0.10") as unconfigured:
            ignored = [
                (await unconfigured.get(ME, headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
                for i in range(30, 34)
            ]
            assert ignored == [401, 401, 401, 429]


# --- L8, I6: probes a flood cannot fail; no first-login timing signal ------------------------


async def test_l8_a_flood_of_readiness_probes_runs_the_checks_once_per_second(sqlite_url: str) -> None:
    import asyncio

    application = create_app(make_settings(sqlite_url), registry=CollectorRegistry())
    async with LifespanManager(application):
        checks = 0

        async def counted() -> None:
            nonlocal checks
            checks += 1
            await asyncio.sleep(0.05)  # a dependency that takes a moment to answer

        application.state.container.readiness.checks["counted"] = counted
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            answers = await asyncio.gather(*(http.get("/health/ready") for _ in range(200)))
    assert {a.status_code for a in answers} == {200}
    assert checks <= 2  # one round (a second if the flood outlived the one-second cache)


async def test_i6_the_dummy_hash_exists_before_the_first_login(app: Any) -> None:
    assert app.state.container.identity._dummy_hash is not None


async def test_i8_a_replay_after_the_delete_returns_the_first_response_by_design(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    """Answered, not changed: a retry gets the first response, it does not re-read the project."""
    manager = await make_user(Role.MANAGER)
    headers = {**manager.headers, "Idempotency-Key": "replay-after-delete"}
    body = {"name": "Short lived", "type": "internal"}
    first = await client.post("/api/v1/projects", json=body, headers=headers)
    assert (
        await client.delete(f"/api/v1/projects/{first.json()['id']}", headers=manager.headers)
    ).status_code == 204
    replay = await client.post("/api/v1/projects", json=body, headers=headers)
    assert (replay.status_code, replay.json(), replay.headers["idempotent-replayed"]) == (
        201,
        first.json(),
        "true",
    )
    assert (
        await client.get(f"/api/v1/projects/{first.json()['id']}", headers=manager.headers)
    ).status_code == 404
