"""Rate limits per route class on memory and on a real Redis; a dead or hung Redis fails open."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import redis as redis_sync
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from app.main import create_app
from app.settings import Settings
from service.tests.builders import DEFAULT_PASSWORD, MakeUser, make_settings, unique_email
from testsupport.servers import RedisServer, redis_server

ERROR_FIELDS = {"statusCode", "message", "error", "details", "timestamp", "path", "requestId"}
LIMITS = {
    "rate_limit_enabled": True,
    "rate_limit_login": "3/minute",
    "rate_limit_write": "6/minute",
    "rate_limit_read": "8/minute",
    "rate_limit_register": "100/minute",
}


def client_for(app: FastAPI, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 50000)), base_url="http://t")


@pytest.fixture
def clean_redis(redis: RedisServer) -> str:
    """The session's Redis, emptied: counters from other tests must not leak in."""
    with redis_sync.Redis.from_url(redis.url, socket_timeout=10) as connection:
        connection.flushdb()
    return redis.url


@pytest.fixture(params=["memory", "redis"])
def settings(request: pytest.FixtureRequest, sqlite_url: str) -> Settings:
    # Limits do not depend on the database: SQLite; both limit storages.
    redis_url = request.getfixturevalue("clean_redis") if request.param == "redis" else None
    return make_settings(sqlite_url, redis_url=redis_url, **LIMITS)


async def login(http: httpx.AsyncClient, email: str, password: str = "wrong password!") -> httpx.Response:
    return await http.post("/api/v1/auth/login", json={"email": email, "password": password})


def assert_is_429(response: httpx.Response, max_retry_after: int = 60) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= max_retry_after
    body = response.json()
    assert set(body) == ERROR_FIELDS
    assert (body["statusCode"], body["error"]) == (429, "Too Many Requests")
    assert body["requestId"] == response.headers["x-request-id"]


async def test_login_is_limited_per_ip_and_email(app: FastAPI) -> None:
    email = unique_email("victim")
    async with client_for(app, "10.0.0.1") as attacker, client_for(app, "10.0.0.2") as elsewhere:
        assert [(await login(attacker, email)).status_code for _ in range(3)] == [401, 401, 401]
        assert_is_429(await login(attacker, email))
        # Refused before the password is checked: even the right password waits.
        assert (await login(attacker, email, DEFAULT_PASSWORD)).status_code == 429
        # Another address for the same email, and another email from the same address, go on.
        assert (await login(elsewhere, email)).status_code == 401
        assert (await login(attacker, unique_email("other"))).status_code == 401
        metrics = (await attacker.get("/metrics")).text
    assert 'rate_limit_rejections_total{route_class="login"} 2.0' in metrics


async def test_writes_are_limited_per_user_and_reads_separately(app: FastAPI, make_user: MakeUser) -> None:
    alice, bob = await make_user(), await make_user()
    async with client_for(app) as http:
        created = [
            (
                await http.post(
                    "/api/v1/projects",
                    json={"name": f"Project {i}", "type": "internal"},
                    headers=alice.headers,
                )
            )
            for i in range(6)
        ]
        assert [r.status_code for r in created] == [201] * 6
        assert_is_429(
            await http.post(
                "/api/v1/projects", json={"name": "Project 7", "type": "internal"}, headers=alice.headers
            )
        )
        assert_is_429(await http.delete(f"/api/v1/projects/{created[0].json()['id']}", headers=alice.headers))
        # Reads are another class; another user has their own budget on the same address.
        assert (await http.get("/api/v1/projects", headers=alice.headers)).status_code == 200
        bob_post = await http.post(
            "/api/v1/projects", json={"name": "Bob project", "type": "client"}, headers=bob.headers
        )
        assert bob_post.status_code == 201


async def test_anonymous_requests_are_limited_per_client_ip(app: FastAPI) -> None:
    async with client_for(app, "10.0.0.3") as one, client_for(app, "10.0.0.4") as other:
        statuses = [(await one.get("/api/v1/projects")).status_code for _ in range(9)]
        assert statuses == [401] * 8 + [429]
        # A token that does not verify counts against the address, not against a user.
        forged = await one.get("/api/v1/projects", headers={"Authorization": "Bearer forged"})
        assert forged.status_code == 429
        assert (await other.get("/api/v1/projects")).status_code == 401


async def test_unknown_api_paths_count_too(app: FastAPI) -> None:
    # Counted before routing: probing for routes spends the same budget as using them.
    async with client_for(app, "10.0.0.6") as http:
        statuses = [(await http.get(f"/api/v1/nothing-{i}")).status_code for i in range(5)]
        statuses += [(await http.get("/api/v2/projects")).status_code for _ in range(3)]
        assert statuses == [404] * 8
        assert_is_429(await http.get("/api/v1/projects"))
        assert (await http.get("/not-api")).status_code == 404  # outside /api/: not limited


async def test_health_and_metrics_are_never_limited(app: FastAPI) -> None:
    async with client_for(app) as http:
        for _ in range(20):
            for path in ("/health/live", "/health/ready", "/metrics"):
                assert (await http.get(path)).status_code == 200


async def test_registration_is_strict_per_client_ip(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, **{**LIMITS, "rate_limit_register": "2/hour"})
    application = create_app(settings, registry=CollectorRegistry())
    async with LifespanManager(application), client_for(application, "10.0.0.5") as http:
        payload = {"password": DEFAULT_PASSWORD, "name": "N"}
        statuses = [
            (await http.post("/api/v1/auth/register", json={**payload, "email": unique_email()})).status_code
            for _ in range(3)
        ]
        assert statuses[:2] == [201, 201]
        assert_is_429(
            await http.post("/api/v1/auth/register", json={**payload, "email": unique_email()}), 3600
        )


async def test_pods_share_counters_through_redis(sqlite_url: str, clean_redis: str) -> None:
    settings = make_settings(sqlite_url, redis_url=clean_redis, **LIMITS)
    pod_a = create_app(settings, registry=CollectorRegistry())
    pod_b = create_app(settings, registry=CollectorRegistry())
    email = unique_email()
    async with (
        LifespanManager(pod_a),
        LifespanManager(pod_b),
        client_for(pod_a, "10.0.1.1") as via_a,
        client_for(pod_b, "10.0.1.1") as via_b,
    ):
        statuses = [(await login(via_a if i % 2 else via_b, email)).status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]


# --- Redis failures: the documented choice is "fail open to per-process limits" ---


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, so the test can stop it."""
    with redis_server() as server:
        yield server


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A port that accepts connections and never answers: a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # the kernel completes handshakes; nobody ever reads
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, registry=CollectorRegistry())
    async with LifespanManager(application):
        yield application


async def timed(http: httpx.AsyncClient, count: int) -> tuple[list[int], list[float]]:
    statuses, seconds = [], []
    for _ in range(count):
        start = time.perf_counter()
        statuses.append((await http.post("/api/v1/auth/logout")).status_code)
        seconds.append(time.perf_counter() - start)
    return statuses, seconds


def storage_errors(metrics: str) -> float:
    line = next(line for line in metrics.splitlines() if line.startswith("rate_limit_storage_errors_total "))
    return float(line.split()[1])


async def test_redis_down_fails_open_to_local_limits_and_recovers(
    sqlite_url: str, own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        sqlite_url,
        redis_url=own_redis.url,
        redis_timeout_seconds=0.2,
        rate_limit_redis_retry_seconds=0.5,
        **{**LIMITS, "rate_limit_write": "1000/minute"},
    )
    async with started(settings) as application, client_for(application, "10.0.2.1") as http:
        assert (await timed(http, 3))[0] == [204] * 3  # through Redis
        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="app.ratelimit.limiter"):
            statuses, seconds = await timed(http, 50)
        # Never refused because Redis is gone, and never stalled by it.
        assert statuses == [204] * 50
        assert any("rate-limit storage failed" in r.message for r in caplog.records)
        # Limits still hold, per process: the login limit trips as before.
        email = unique_email()
        assert [(await login(http, email)).status_code for _ in range(4)] == [401, 401, 401, 429]
        errors_while_down = storage_errors((await http.get("/metrics")).text)
        # Redis was tried at most once per retry period (0.5 s), not once per request.
        assert 1 <= errors_while_down <= sum(seconds) / 0.5 + 2

        own_redis.start_again()
        await asyncio.sleep(0.6)  # past the retry period: the next call tries Redis again
        assert (await timed(http, 5))[0] == [204] * 5
        assert storage_errors((await http.get("/metrics")).text) == errors_while_down
    with redis_sync.Redis.from_url(own_redis.url, socket_timeout=10) as connection:
        assert connection.keys("ratelimit*"), "counters are back in Redis after recovery"


async def test_hung_redis_costs_one_timeout_per_retry_period(sqlite_url: str, blackhole: str) -> None:
    settings = make_settings(
        sqlite_url,
        redis_url=blackhole,
        redis_timeout_seconds=0.2,
        rate_limit_redis_retry_seconds=30,
        **LIMITS,
    )
    async with started(settings) as application, client_for(application, "10.0.3.1") as http:
        statuses, seconds = await timed(http, 40)
        metrics = (await http.get("/metrics")).text
    # Write limit 6/minute, judged locally while the breaker is open.
    assert statuses == [204] * 6 + [429] * 34
    assert seconds[0] >= 0.15  # the first request waited out the timeout
    assert storage_errors(metrics) == 1.0  # and only it: the breaker kept the others off Redis
