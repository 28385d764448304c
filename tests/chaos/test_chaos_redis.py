"""Redis SIGKILLed under load, then restarted: the API keeps serving and stays ready, the rate
limits fall back to per-process counters (logins stay bounded), tokens keep working, and the
degradation shows in /metrics and the log; after the restart the shared counters are used again."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path

import httpx
import redis

from app.core.settings import Settings
from app.migrate import upgrade
from tests.chaos.harness import Figures, Profile, chaos_stack, leaky_5xx, report, settle_events
from testsupport.load import Balancer, SteadyLoad, api_users
from testsupport.processes import metric_value
from testsupport.servers import redis_server

RETRY_SECONDS = 1.0  # RATE_LIMIT_REDIS_RETRY_SECONDS: how soon the limiter tries Redis again
LOGIN_LIMIT = 5  # RATE_LIMIT_LOGIN per client IP and email (the default, 5/minute)
STORAGE_ERRORS = "rate_limit_storage_errors_total"
FALLBACK_LOG = "rate-limit storage failed: using per-process limits"


def shared_counters(port: int) -> int:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return sum(1 for _ in client.scan_iter(match="ratelimit:*"))
    finally:
        client.close()


async def wrong_logins(base_url: str, email: str, attempts: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return [
            (
                await http.post("/api/v1/auth/login", json={"email": email, "password": "not the password"})
            ).status_code
            for _ in range(attempts)
        ]


async def test_redis_killed_the_api_keeps_serving_and_stays_ready(
    profile: Profile, postgres_database: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(upgrade, Settings(database_url=postgres_database))
    api_settings = {
        "RATE_LIMIT_ENABLED": "true",
        # Read and write limits no load user reaches: the scenario is about the store, not the budget.
        "RATE_LIMIT_READ": "100000/minute",
        "RATE_LIMIT_WRITE": "100000/minute",
        "RATE_LIMIT_REDIS_RETRY_SECONDS": str(RETRY_SECONDS),
    }
    with (
        redis_server() as store,
        chaos_stack(postgres_database, tmp_path, api={**api_settings, "REDIS_URL": store.url}) as stack,
    ):
        base = stack.api.base_url
        tokens = await api_users(base, profile.users)
        assert shared_counters(store.port) > 0, "the limiter must count in Redis while it is up"
        balancer = Balancer([base])
        total = profile.before_seconds + profile.fault_seconds + profile.after_seconds + 1
        load = asyncio.create_task(SteadyLoad(balancer, tokens, profile.rate, total).run())

        await asyncio.sleep(profile.before_seconds)
        killed_at, killed_wall = time.monotonic(), time.time()
        await asyncio.to_thread(store.kill)
        await asyncio.sleep(min(0.5, profile.fault_seconds / 4))
        # Brute force while Redis is down: the per-process fallback still stops it.
        victim = f"victim-{int(killed_wall)}@example.com"
        logins = await wrong_logins(base, victim, LOGIN_LIMIT + 2)
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
        result = await load
        account = await settle_events(stack.receiver, postgres_database, result.acknowledged_writes)
        fallback_logs = [r for r in stack.api.log_records() if r.get("message") == FALLBACK_LOG]

    storage_errors = metric_value(metrics_during, STORAGE_ERRORS) or 0.0
    readiness_during = {status for at, _, status in balancer.history if at >= killed_at}
    first_fallback = min(
        (datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp() for r in fallback_logs),
        default=None,
    )
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
            f"readiness {sorted(readiness_during)} throughout; logins during the outage "
            f"{logins.count(401)}x401 then {logins.count(429)}x429; "
            f"{storage_errors:g} storage errors counted",
        )
    )

    assert result.failed == [], "no request may fail because Redis is gone"
    assert leaky_5xx(result.outcomes) == []
    assert all(o.status in {200, 201} for o in result.outcomes), "tokens must keep working"
    assert readiness_during == {200}, "Redis is not a readiness dependency"
    # Rate limiting degrades to per-process counters, as documented: still bounded.
    assert logins == [401] * LOGIN_LIMIT + [429] * 2
    assert storage_errors >= 1
    assert fallback_logs, "the fallback must be logged"
    assert first_fallback is not None and first_fallback - killed_wall < 5
    assert recovered_at is not None, "the limiter never went back to the shared counters"
    assert account.lost == []
