"""A database the API cannot reach: 503 with Retry-After and the standard body, never a 500 with a
stack trace per request (found by tests/chaos, which kills PostgreSQL under load)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from app.kernel.principal import Principal, Role
from app.settings import Settings
from service.tests.builders import make_settings
from testsupport.servers import free_port


@pytest.fixture
def settings() -> Settings:
    # Nothing listens there: every connection attempt is refused, as after a database crash.
    return make_settings(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/api/v1/projects", None), ("POST", "/api/v1/projects", {"name": "Apollo", "type": "internal"})],
)
async def test_unreachable_database_is_a_503_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    token = app.state.container.tokens.issue(Principal(user_id=uuid.uuid4(), role=Role.MEMBER), 0).token
    response = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    payload = response.json()
    assert payload["message"] == "Service unavailable: retry later"
    assert payload["error"] == "Service Unavailable" and payload["details"] == {}
    assert "Connection" not in payload["message"]


async def test_the_503_is_declared_in_openapi(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        if path.startswith("/api/"):
            for operation in operations.values():
                assert {"500", "503", "507"} <= set(operation["responses"]), (path, operation["operationId"])
