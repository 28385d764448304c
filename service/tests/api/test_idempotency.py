"""Idempotency-Key on POST /api/v1/projects, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from app.idempotency.store import purge_expired_idempotency_keys
from app.idempotency.tables import idempotency_keys
from app.kernel.clock import utcnow
from app.outbox.tables import outbox_events
from app.persistence.database import create_engine
from app.projects.infrastructure.tables import projects
from app.settings import Settings
from service.tests.builders import ApiUser, MakeUser, project_payload

ERROR_FIELDS = {"statusCode", "message", "error", "details", "timestamp", "path", "requestId"}


async def post(client: httpx.AsyncClient, user: ApiUser, body: dict[str, object], key: str) -> httpx.Response:
    headers = {**user.headers, "Idempotency-Key": key}
    return await client.post("/api/v1/projects", json=body, headers=headers)


async def count(settings: Settings, table: object) -> int:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return int((await conn.scalar(select(func.count()).select_from(table))) or 0)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def test_a_retry_returns_the_first_response_and_creates_nothing(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    member = await make_user()
    body, key = project_payload(), str(uuid.uuid4())
    first = await post(client, member, body, key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # Same body, keys in another order: the same request.
    retry = await post(client, member, dict(reversed(list(body.items()))), key)
    assert retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["location"] == first.headers["location"] == f"/api/v1/projects/{first.json()['id']}"
    assert await count(settings, projects) == 1
    assert await count(settings, outbox_events) == 1  # one ProjectCreated, not two


async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    member = await make_user()
    key = "order-7f3a"
    assert (await post(client, member, project_payload(name="First"), key)).status_code == 201
    reused = await post(client, member, project_payload(name="Second"), key)
    assert reused.status_code == 422
    body = reused.json()
    assert set(body) == ERROR_FIELDS
    assert list(body["details"]) == ["Idempotency-Key"]
    listed = (await client.get("/api/v1/projects", headers=member.headers)).json()["data"]
    assert [p["name"] for p in listed] == ["First"]


async def test_keys_are_scoped_per_user(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    alice, bob = await make_user(), await make_user()
    body, key = project_payload(), "shared-key"
    from_alice = await post(client, alice, body, key)
    from_bob = await post(client, bob, body, key)
    assert from_alice.status_code == from_bob.status_code == 201
    assert "idempotent-replayed" not in from_bob.headers
    assert from_alice.json()["id"] != from_bob.json()["id"]
    assert from_bob.json()["ownerId"] == bob.id


async def test_without_a_key_every_post_creates(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    member = await make_user()
    body = project_payload()
    ids = {
        (await client.post("/api/v1/projects", json=body, headers=member.headers)).json()["id"] for _ in "ab"
    }
    assert len(ids) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "tab\there", "caf\u00e9"])
async def test_malformed_keys_are_422(client: httpx.AsyncClient, make_user: MakeUser, key: str) -> None:
    member = await make_user()
    response = await client.post(
        "/api/v1/projects",
        json=project_payload(),
        headers=httpx.Headers({**member.headers, "Idempotency-Key": key}, encoding="utf-8"),
    )
    assert response.status_code == 422, response.text
    assert "Idempotency-Key" in response.json()["details"]


async def test_the_longest_key_is_accepted(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    member = await make_user()
    key = "k" * 255
    first = await post(client, member, project_payload(name="Long key"), key)
    again = await post(client, member, project_payload(name="Long key"), key)
    assert (first.status_code, again.headers.get("idempotent-replayed")) == (201, "true")


async def test_concurrent_duplicates_create_one_project(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    member = await make_user()
    body, key = project_payload(), str(uuid.uuid4())
    responses = await asyncio.gather(*(post(client, member, body, key) for _ in range(6)))
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert await count(settings, projects) == 1
    assert await count(settings, idempotency_keys) == 1


async def test_an_expired_key_is_new_again(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    member = await make_user()
    body, key = project_payload(), "expiring"
    first = await post(client, member, body, key)
    engine = create_engine(settings)
    async with engine.begin() as conn:
        await conn.execute(update(idempotency_keys).values(expires_at=utcnow() - timedelta(seconds=1)))
    await engine.dispose()
    again = await post(client, member, body, key)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    # The expired record made room for the new one, and the retry window starts over.
    replay = await post(client, member, body, key)
    assert replay.json()["id"] == again.json()["id"]
    assert await count(settings, idempotency_keys) == 1


async def test_records_expire_after_the_ttl_and_the_sweep_deletes_them(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings
) -> None:
    member = await make_user()
    before = utcnow()
    for key in ("a", "b", "c"):
        assert (await post(client, member, project_payload(), key)).status_code == 201
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            expiries = (await conn.scalars(select(idempotency_keys.c.expires_at))).all()
            ttl = timedelta(seconds=settings.idempotency_ttl_seconds)
            assert all(before + ttl <= expiry <= utcnow() + ttl for expiry in expiries)
            await conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key != "c")
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        async with engine.begin() as conn:
            assert await purge_expired_idempotency_keys(conn, utcnow()) == 2
            assert (await conn.scalars(select(idempotency_keys.c.key))).all() == ["c"]
    finally:
        await engine.dispose()
