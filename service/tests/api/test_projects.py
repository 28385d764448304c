from __future__ import annotations

import asyncio

import httpx
import pytest

from app.kernel.principal import Role
from service.tests.builders import ApiUser, MakeUser, project_payload


async def create(client: httpx.AsyncClient, user: ApiUser, **fields: object) -> dict[str, object]:
    response = await client.post("/api/v1/projects", json=project_payload(**fields), headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_returns_201_with_location(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    member = await make_user()
    response = await client.post(
        "/api/v1/projects", json={"name": "Hermes", "type": "client"}, headers=member.headers
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/projects/{body['id']}"
    assert body["status"] == "pending"
    assert body["ownerId"] == member.id
    assert body["description"] is None
    assert set(body) == {"id", "name", "description", "type", "status", "ownerId", "createdAt", "updatedAt"}
    fetched = await client.get(response.headers["location"], headers=member.headers)
    assert fetched.json() == body


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "ab", "type": "internal"}, "name"),
        ({"name": "x" * 101, "type": "internal"}, "name"),
        ({"name": "Valid", "type": "internal", "description": "d" * 501}, "description"),
        ({"name": "Valid", "type": "spaceship"}, "type"),
        ({"name": "Valid"}, "type"),
        ({"name": "Valid", "type": "internal", "ownerId": "someone"}, "ownerId"),
    ],
)
async def test_invalid_projects_are_422_with_details(
    client: httpx.AsyncClient, make_user: MakeUser, payload: dict[str, object], field: str
) -> None:
    member = await make_user()
    response = await client.post("/api/v1/projects", json=payload, headers=member.headers)
    assert response.status_code == 422
    assert field in response.json()["details"]


async def test_pages_through_every_project_once(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    member = await make_user()
    created = {str((await create(client, member))["id"]) for _ in range(12)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "5", **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/projects", params=params, headers=member.headers)
        assert response.status_code == 200
        body = response.json()
        pages += 1
        seen += [p["id"] for p in body["data"]]
        assert body["meta"]["limit"] == 5
        if not body["meta"]["hasMore"]:
            assert body["meta"]["nextCursor"] is None
            break
        cursor = body["meta"]["nextCursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 12
    assert set(seen) == created


async def test_list_orders_newest_first_and_filters_by_status(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    member = await make_user()
    first = await create(client, member)
    second = await create(client, member)
    await client.patch(f"/api/v1/projects/{first['id']}", json={"status": "active"}, headers=member.headers)
    everything = (await client.get("/api/v1/projects", headers=member.headers)).json()["data"]
    assert [p["id"] for p in everything] == [second["id"], first["id"]]
    active = (await client.get("/api/v1/projects?status=active", headers=member.headers)).json()["data"]
    assert [p["id"] for p in active] == [first["id"]]


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "status=done", "cursor=%%%", "cursor=abc"])
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, make_user: MakeUser, query: str
) -> None:
    member = await make_user()
    response = await client.get(f"/api/v1/projects?{query}", headers=member.headers)
    assert response.status_code == 422
    assert response.json()["details"]


async def test_update_changes_given_fields_and_can_clear_description(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    member = await make_user()
    project = await create(client, member, description="to be cleared")
    url = f"/api/v1/projects/{project['id']}"
    renamed = await client.patch(url, json={"name": "Renamed"}, headers=member.headers)
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["description"]) == ("Renamed", "to be cleared")
    cleared = await client.patch(url, json={"description": None}, headers=member.headers)
    assert cleared.json()["description"] is None
    assert (await client.patch(url, json={"name": "no"}, headers=member.headers)).status_code == 422
    assert (await client.patch(url, json={"owner": "x"}, headers=member.headers)).status_code == 422


async def test_rbac_matrix_for_project_routes(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    owner, stranger = await make_user(), await make_user()
    manager, admin = await make_user(Role.MANAGER), await make_user(Role.ADMIN)
    project = await create(client, owner)
    url = f"/api/v1/projects/{project['id']}"

    # Read: owner, manager and admin see it; another member gets 404 (no existence leak).
    for user, expected in ((owner, 200), (manager, 200), (admin, 200), (stranger, 404)):
        assert (await client.get(url, headers=user.headers)).status_code == expected
    # Lists: members see their own only; managers and admins see everyone's.
    for user, visible in ((owner, True), (stranger, False), (manager, True), (admin, True)):
        ids = [p["id"] for p in (await client.get("/api/v1/projects", headers=user.headers)).json()["data"]]
        assert (project["id"] in ids) is visible
    # Update: owner, manager, admin.
    for user, expected in ((stranger, 404), (owner, 200), (manager, 200), (admin, 200)):
        assert (
            await client.patch(url, json={"status": "active"}, headers=user.headers)
        ).status_code == expected
    # Delete: managers and admins only; a member, even the owner, gets 403.
    for user in (owner, stranger):
        denied = await client.delete(url, headers=user.headers)
        assert denied.status_code == 403
        assert denied.json()["statusCode"] == 403
    assert (await client.delete(url, headers=manager.headers)).status_code == 204
    assert (await client.delete(url, headers=admin.headers)).status_code == 404
    # Without a token every project route is 401.
    for method, path in (
        ("GET", "/api/v1/projects"),
        ("POST", "/api/v1/projects"),
        ("GET", url),
        ("PATCH", url),
        ("DELETE", url),
    ):
        assert (await client.request(method, path, json={})).status_code == 401


async def test_concurrent_creates_are_all_listed(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    member = await make_user()
    await asyncio.gather(*(create(client, member) for _ in range(8)))
    listed = (await client.get("/api/v1/projects?limit=100", headers=member.headers)).json()["data"]
    assert len(listed) == 8
