"""The HTTP edge: one error body everywhere, request ids, size limits, health, metrics, OpenAPI."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.settings import Settings
from service.tests.builders import make_settings

ERROR_FIELDS = {"statusCode", "message", "error", "details", "timestamp", "path", "requestId"}


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    # The edge does not depend on the database backend: SQLite is enough here.
    return make_settings(sqlite_url, max_body_bytes=2048)


async def test_unknown_route_is_404_with_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    body = response.json()
    assert set(body) == ERROR_FIELDS
    assert (body["statusCode"], body["error"], body["path"]) == (404, "Not Found", "/api/v1/nothing-here")
    assert body["requestId"] == response.headers["x-request-id"]
    assert body["timestamp"].endswith("Z")


async def test_wrong_method_is_405_with_the_error_body(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/projects")
    assert response.status_code == 405
    assert set(response.json()) == ERROR_FIELDS
    # Found by fuzzing: Allow listed only the first matching route's method ("POST").
    assert response.headers["allow"] == "GET, POST"
    item = await client.options(f"/api/v1/projects/{uuid.uuid4()}")
    assert (item.status_code, item.headers["allow"]) == (405, "DELETE, GET, PATCH")


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["details"]


async def test_oversized_bodies_are_413_by_header_and_by_stream(client: httpx.AsyncClient) -> None:
    big = {"email": "a@example.com", "password": "p" * 4000}
    declared = await client.post("/api/v1/auth/login", json=big)
    assert declared.status_code == 413
    assert set(declared.json()) == ERROR_FIELDS

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 1000

    streamed = await client.post("/api/v1/auth/login", content=chunks())
    assert streamed.status_code == 413


async def test_request_id_is_echoed_when_valid_and_replaced_when_not(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/health/live", headers={"X-Request-ID": "trace-abc.123"})
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    replaced = await client.get("/health/live", headers={"X-Request-ID": "bad id <script>"})
    assert replaced.headers["x-request-id"] != "bad id <script>"
    assert len(replaced.headers["x-request-id"]) == 32


@pytest.fixture
async def failing_app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, registry=CollectorRegistry())

    @application.get("/api/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    async with LifespanManager(application):
        yield application


async def test_unhandled_errors_are_500_without_internals_and_logged(
    failing_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        with caplog.at_level(logging.ERROR, logger="app.errors"):
            response = await http.get("/api/v1/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    body = response.json()
    assert set(body) == ERROR_FIELDS
    assert body["message"] == "Internal server error"
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    assert body["requestId"] == "req-500" == response.headers["x-request-id"]
    # Security review L9: the server closes the connection after a 500, and says so.
    assert response.headers["connection"] == "close"
    [record] = [r for r in caplog.records if r.name == "app.errors"]
    assert record.exc_info is not None and "secret internal detail" in str(record.exc_info[1])
    # The access line of a 5xx is an error too (2xx-4xx lines are info).
    [access] = [r for r in caplog.records if r.name == "app.access"]
    assert (access.levelno, access.status, access.route) == (logging.ERROR, 500, "/api/v1/boom")  # type: ignore[attr-defined]


async def test_liveness_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    for path in ("/health/ready", "/health"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "checks": {"db": "ok"}}


async def test_readiness_names_the_failing_check(app: FastAPI, client: httpx.AsyncClient) -> None:
    async def database_down() -> None:
        raise ConnectionError("refused")

    app.state.container.readiness.checks["db"] = database_down
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"db": "error: ConnectionError"}}
    assert (await client.get("/health/live")).status_code == 200


async def test_readiness_is_503_while_draining(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.draining = True
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "draining"


def _families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


async def test_metrics_use_route_templates_and_bounded_labels(client: httpx.AsyncClient) -> None:
    project_id = uuid.uuid4()
    await client.get(f"/api/v1/projects/{project_id}")
    for _ in range(1000):
        await client.get(f"/random/{uuid.uuid4().hex}")
    text = (await client.get("/metrics")).text
    families = _families(text)
    routes = {labels["route"] for labels, _ in families["http_requests"]}
    assert "/api/v1/projects/{project_id}" in routes
    assert str(project_id) not in text
    assert "unmatched" in routes
    # 1,000 random paths collapsed into one series per (method, status) of "unmatched".
    unmatched = [
        (labels, value) for labels, value in families["http_requests"] if labels["route"] == "unmatched"
    ]
    assert len(unmatched) == 1 and unmatched[0][1] == 1000
    assert len(families["http_requests"]) < 10
    buckets = {labels["le"] for labels, _ in families["http_request_duration_seconds"] if "le" in labels}
    assert {"0.025", "0.25", "2.5"} <= buckets


async def test_openapi_declares_error_responses_on_every_api_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            errors = {code for code in operation["responses"] if code.startswith(("4", "5"))}
            # Any route: a Host not trusted, a body too large, a server error.
            assert {"400", "413", "500"} <= errors, f"{method.upper()} {path} does not declare {errors}"
            if not path.startswith("/api/"):
                if path != "/health/live":
                    assert "503" in errors, f"{method.upper()} {path}: readiness answers 503 when not ready"
                continue
            if "requestBody" in operation or operation.get("parameters"):
                assert "422" in errors, f"{method.upper()} {path} takes input but does not declare 422"
            for code in errors:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert "ErrorBody" in spec["components"]["schemas"]
