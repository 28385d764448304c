"""Security headers on every response, HSTS behind trusted proxies only, CORS allow-list, trusted hosts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.edge.security import API_CSP, DOCS_CSP, HSTS
from app.main import create_app
from app.settings import Settings
from service.tests.builders import make_settings

ALLOWED_ORIGIN = "https://app.example.com"
ERROR_FIELDS = {"statusCode", "message", "error", "details", "timestamp", "path", "requestId"}
COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
}


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    # Headers do not depend on the database backend: SQLite is enough here.
    return make_settings(
        sqlite_url,
        cors_origins=[ALLOWED_ORIGIN],
        max_body_bytes=2048,
        rate_limit_enabled=True,
        rate_limit_read="3/minute",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, registry=CollectorRegistry())

    @application.get("/api/v1/boom")
    async def boom() -> None:
        raise RuntimeError("unexpected")

    async with LifespanManager(application):
        yield application


def client_for(
    app: ASGIApp, base_url: str = "http://testserver", peer: str = "127.0.0.1"
) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def assert_security_headers(response: httpx.Response, csp: str = API_CSP) -> None:
    for name, value in COMMON_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, name)
    assert response.headers["content-security-policy"] == csp
    assert "x-request-id" in response.headers


async def test_every_kind_of_response_carries_the_security_headers(app: FastAPI) -> None:
    async with client_for(app) as http:
        responses = {
            200: await http.get("/health/live"),
            404: await http.get("/api/v1/missing"),
            405: await http.put("/api/v1/projects"),
            413: await http.post("/api/v1/auth/login", json={"email": "a@b.c", "password": "p" * 4000}),
            422: await http.post(
                "/api/v1/auth/login", content=b"{", headers={"content-type": "application/json"}
            ),
            500: await http.get("/api/v1/boom"),
        }
        reads = [await http.get("/api/v1/projects") for _ in range(4)]
    responses[401], responses[429] = reads[0], reads[-1]
    for status, response in responses.items():
        assert response.status_code == status, response.text
        assert_security_headers(response)
        assert "strict-transport-security" not in response.headers  # plain http
        if status >= 400:
            assert set(response.json()) == ERROR_FIELDS


async def test_docs_get_a_policy_that_lets_swagger_ui_load(app: FastAPI) -> None:
    async with client_for(app) as http:
        docs = await http.get("/docs")
        spec = await http.get("/openapi.json")
    assert docs.status_code == 200
    assert_security_headers(docs, DOCS_CSP)
    # Every script and stylesheet the page loads comes from a source its policy allows.
    sources = re.findall(r'(?:src|href)="(https://[^/"]+)/', docs.text)
    allowed = {part for part in DOCS_CSP.split() if part.startswith("https://")}
    assert sources and set(sources) <= allowed
    assert_security_headers(spec)  # JSON: the strict API policy


async def test_hsts_only_over_https(app: FastAPI) -> None:
    async with client_for(app, "https://testserver") as https, client_for(app) as http:
        assert (await https.get("/health/live")).headers["strict-transport-security"] == HSTS
        assert "strict-transport-security" not in (await http.get("/health/live")).headers


async def test_forwarded_proto_and_for_count_only_from_a_trusted_proxy(app: FastAPI) -> None:
    # What `python -m app.main` runs: uvicorn's proxy-header handling, FORWARDED_ALLOW_IPS=127.0.0.1.
    behind_proxy = ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1")
    forwarded = {"X-Forwarded-Proto": "https"}
    async with client_for(behind_proxy) as proxy, client_for(behind_proxy, peer="203.0.113.7") as direct:
        assert (await proxy.get("/health/live", headers=forwarded)).headers[
            "strict-transport-security"
        ] == HSTS
        spoofed = await direct.get("/health/live", headers=forwarded)
        assert "strict-transport-security" not in spoofed.headers

        # The rate-limit key is the forwarded client behind the proxy, the peer otherwise.
        for client_ip in ("198.51.100.1", "198.51.100.2"):
            statuses = [
                (await proxy.get("/api/v1/projects", headers={"X-Forwarded-For": client_ip})).status_code
                for _ in range(4)
            ]
            assert statuses == [401, 401, 401, 429]
        rotating = [
            (await direct.get("/api/v1/projects", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(10, 14)
        ]
        assert rotating == [401, 401, 401, 429]  # a spoofed header does not buy a new budget


async def test_cors_allowed_origin_gets_headers_including_preflight(app: FastAPI) -> None:
    origin = {"Origin": ALLOWED_ORIGIN}
    async with client_for(app) as http:
        simple = await http.get("/health/live", headers=origin)
        preflight = await http.options(
            "/api/v1/projects",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
            },
        )
        limited = [await http.get("/api/v1/projects", headers=origin) for _ in range(4)][-1]
    assert simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert simple.headers["access-control-allow-credentials"] == "true"
    exposed = {h.strip().lower() for h in simple.headers["access-control-expose-headers"].split(",")}
    assert {"x-request-id", "location", "retry-after"} <= exposed
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "idempotency-key" in preflight.headers["access-control-allow-headers"].lower()
    assert_security_headers(preflight)
    # A browser can read a 429 and its Retry-After.
    assert limited.status_code == 429
    assert limited.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


async def test_cors_disallowed_origin_gets_no_cors_headers(app: FastAPI) -> None:
    origin = {"Origin": "https://evil.example.net"}
    async with client_for(app) as http:
        simple = await http.get("/health/live", headers=origin)
        preflight = await http.options(
            "/api/v1/projects", headers={**origin, "Access-Control-Request-Method": "POST"}
        )
    assert simple.status_code == 200
    assert preflight.status_code == 400
    assert set(preflight.json()) == ERROR_FIELDS
    for response in (simple, preflight):
        assert not [name for name in response.headers if name.startswith("access-control-")]
        assert_security_headers(response)
    assert "Origin" in simple.headers["vary"]


async def started(settings: Settings) -> FastAPI:
    return create_app(settings, registry=CollectorRegistry())


async def test_without_origins_no_cors_and_a_wildcard_never_allows_credentials(sqlite_url: str) -> None:
    none = await started(make_settings(sqlite_url))
    wildcard = await started(make_settings(sqlite_url, cors_origins=["*"]))
    origin = {"Origin": ALLOWED_ORIGIN}
    async with (
        LifespanManager(none),
        LifespanManager(wildcard),
        client_for(none) as plain,
        client_for(wildcard) as anyone,
    ):
        assert "access-control-allow-origin" not in (await plain.get("/health/live", headers=origin)).headers
        response = await anyone.get("/health/live", headers=origin)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_only_trusted_hosts_are_served_but_probes_always_are(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, trusted_hosts=["api.example.com", "*.example.org"])
    application = await started(settings)
    async with LifespanManager(application), client_for(application) as http:

        async def status_for(host: str, path: str = "/openapi.json") -> int:
            return (await http.get(path, headers={"Host": host})).status_code

        assert await status_for("api.example.com") == 200
        assert await status_for("API.example.com:443") == 200
        assert await status_for("eu.example.org") == 200
        assert await status_for("example.org") == 400
        refused = await http.get("/openapi.json", headers={"Host": "evil.example.net"})
        # Kubelet probes and Prometheus scrapes come by pod IP.
        assert await status_for("10.0.0.7:8000", "/health/live") == 200
        assert await status_for("10.0.0.7:8000", "/health/ready") == 200
        assert await status_for("10.0.0.7:8000", "/metrics") == 200
        assert await status_for("10.0.0.7:8000", "/api/v1/projects") == 400
    assert refused.status_code == 400
    assert set(refused.json()) == ERROR_FIELDS
    assert refused.json()["message"] == "Invalid host header"
    assert_security_headers(refused)


@pytest.mark.parametrize("pattern", ["*example.com", "api.*.com"])
async def test_a_malformed_trusted_host_pattern_is_refused_at_start(sqlite_url: str, pattern: str) -> None:
    with pytest.raises(ValueError, match="TRUSTED_HOSTS"):
        await started(make_settings(sqlite_url, trusted_hosts=[pattern]))
