"""Redis SIGKILLed under load, then restarted: the API keeps serving and stays ready, the rate
limits fall back to per-process counters (logins stay bounded), tokens keep working, and the
degradation shows in /metrics and the log; after the restart the shared counters are used again.

Every token keeps authenticating while Redis is gone; what revocation does then is tested in
service/tests/api/test_token_revocation.py.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx
import pytest
import redis

from tests.chaos.harness import (
    SHARED_API_SETTINGS,
    Figures,
    Profile,
    Stack,
    leaky_5xx,
    report,
    settle_events,
    start_load,
)
from testsupport.load import Balancer
from testsupport.processes import metric_value
from testsupport.servers import RedisServer

pytestmark = pytest.mark.slow

RETRY_SECONDS = float(SHARED_API_SETTINGS["RATE_LIMIT_REDIS_RETRY_SECONDS"])
LOGIN_LIMIT = 5  # RATE_LIMIT_LOGIN per client IP and email (the default, 5/minute)
STORAGE_ERRORS = "rate_limit_storage_errors_total"
FALLBACK_LOG = "rate-limit storage failed: using per-process limits"


def shared_counters(port: int) -> int:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return sum(1 for _ in client.scan_iter(match="ratelimit:*"))
    finally:
        client.close()


def wall_time(record: dict[str, object]) -> float:
    return datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")).timestamp()


async def wrong_logins(base_url: str, email: str, attempts: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        credentials = {"email": email, "password": "not the password"}
        return [
            (await http.post("/api/v1/auth/login", json=credentials)).status_code for _ in range(attempts)
        ]


async def test_redis_killed_the_api_keeps_serving_and_stays_ready(
    profile: Profile, shared_stack: Stack, chaos_redis: RedisServer
) -> None:
    stack, store = shared_stack, chaos_redis
    assert shared_counters(store.port) > 0, "the limiter must count in Redis while it is up"
    balancer = Balancer([api.base_url for api in stack.apis])
    load = start_load(balancer, stack.tokens, profile)

    await asyncio.sleep(profile.before_seconds)
    metrics_before = stack.api.metrics()
    killed_at, killed_wall = time.monotonic(), time.time()
    await asyncio.to_thread(store.kill)
    await asyncio.sleep(min(0.5, profile.fault_seconds / 4))
    # Brute force while Redis is down, to one process (the fallback counters are per process,
    # looser by the number of pods): the per-process limit still stops it.
    logins = await wrong_logins(stack.api.base_url, f"victim-{int(killed_wall)}@example.com", LOGIN_LIMIT + 2)
    await asyncio.sleep(max(0.0, killed_at + profile.fault_seconds - time.monotonic()))
    metrics_during = stack.api.metrics()

    restarted_at = time.monotonic()
    await asyncio.to_thread(store.start_again)
    recovered_at = None
    while time.monotonic() - restarted_at < RETRY_SECONDS + 10:
        if await asyncio.to_thread(shared_counters, store.port):
            recovered_at = time.monotonic()
            break
        await asyncio.sleep(0.05)
    result = await load.finish(profile.after_seconds)
    account = await settle_events(stack.receiver, stack.database_url, result.acknowledged_writes)
    fallback_logs = [
        r
        for r in stack.api.log_records()
        if r.get("message") == FALLBACK_LOG and wall_time(r) >= killed_wall - 0.1
    ]

    storage_errors = (metric_value(metrics_during, STORAGE_ERRORS) or 0.0) - (
        metric_value(metrics_before, STORAGE_ERRORS) or 0.0
    )
    # What readiness answered while Redis was down ("none": no answer within the probe timeout, which
    # only an overloaded machine causes; a balancer counts it as a failed probe, not as a 503).
    readiness_during = {str(status).lower() for at, _, status in balancer.history if at >= killed_at}
    first_fallback = min((wall_time(r) for r in fallback_logs), default=None)
    report(
        Figures(
            "Redis SIGKILL + restart",
            result.sent,
            len(result.failed),
            0,
            len(account.lost),
            account.duplicated,
            None if first_fallback is None else first_fallback - killed_wall,
            None if recovered_at is None else recovered_at - restarted_at,
            f"readiness answered {'/'.join(sorted(readiness_during))} throughout; "
            f"wrong logins to one process during the outage: "
            f"{logins.count(401)}x401 then {logins.count(429)}x429; "
            f"{storage_errors:g} storage errors counted",
        )
    )

    assert result.failed == [], "no request may fail because Redis is gone"
    assert leaky_5xx(result.outcomes) == []
    assert all(o.status in {200, 201} for o in result.outcomes), "tokens must keep working"
    assert "200" in readiness_during and "503" not in readiness_during, "Redis is not a readiness dependency"
    # Rate limiting degrades to per-process counters, as documented: still bounded.
    assert logins == [401] * LOGIN_LIMIT + [429] * 2
    assert storage_errors >= 1
    assert fallback_logs, "the fallback must be logged"
    assert first_fallback is not None and first_fallback - killed_wall < 5
    assert recovered_at is not None, "the limiter never went back to the shared counters"
    assert account.lost == []
