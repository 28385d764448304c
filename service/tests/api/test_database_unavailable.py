"""A database the API cannot reach: 503 with Retry-After and the standard body, never a 500 with a
stack trace per request (found by tests/chaos, which kills PostgreSQL under load)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.kernel.principal import Principal, Role
from app.settings import Settings
from service.tests.builders import make_settings
from testsupport.servers import free_port


async def _answer_starting_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What PostgreSQL answers while it replays its WAL after a crash: FATAL 57P03."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            await reader.readexactly(length - 8)
            if code == 80877103:  # SSLRequest: no TLS here, the client goes on in plain text
                writer.write(b"N")
                continue
            fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
            writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
            await writer.drain()
            break
    writer.close()


@pytest.fixture(params=["refused", "starting up"])
async def settings(request: pytest.FixtureRequest) -> AsyncIterator[Settings]:
    if request.param == "refused":
        # Nothing listens there: every connection attempt is refused, as after a database crash.
        yield make_settings(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone")
        return
    server = await asyncio.start_server(_answer_starting_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield make_settings(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/recovering")


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
