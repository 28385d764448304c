"""The moving-window script on a real Redis: all-or-nothing across limits, exact Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis as redis_sync
from prometheus_client import CollectorRegistry

from app.persistence.redis import PipelinedRedis
from app.ratelimit.limiter import RateLimiter, RateLimitExceededError, RateLimitMetrics, RouteClass
from service.tests.builders import make_settings
from testsupport.servers import RedisServer, redis_server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def admin(own_redis: RedisServer) -> Iterator[redis_sync.Redis]:
    with redis_sync.Redis.from_url(own_redis.url, decode_responses=True, socket_timeout=10) as connection:
        yield connection


LimiterFactory = Callable[[str | None, str], tuple[RateLimiter, RateLimitMetrics]]


@pytest.fixture
async def clients() -> AsyncIterator[list[PipelinedRedis]]:
    opened: list[PipelinedRedis] = []
    yield opened
    for client in opened:
        await client.close()


@pytest.fixture
def limiter_for(sqlite_url: str, clients: list[PipelinedRedis]) -> LimiterFactory:
    def build(redis_url: str | None, read: str) -> tuple[RateLimiter, RateLimitMetrics]:
        metrics = RateLimitMetrics(CollectorRegistry())
        settings = make_settings(
            sqlite_url, redis_url=redis_url, rate_limit_enabled=True, rate_limit_read=read
        )
        client = PipelinedRedis(redis_url) if redis_url is not None else None
        if client is not None:
            clients.append(client)
        return RateLimiter(settings, client, metrics), metrics

    return build


async def _outcomes(limiter: RateLimiter, hits: int) -> list[str]:
    """Each hit's verdict: "ok", or the order of magnitude of its Retry-After."""
    outcomes = []
    for _ in range(hits):
        try:
            await limiter.check(RouteClass.READ, "user:same")
        except RateLimitExceededError as refused:
            wait = int((refused.headers or {})["Retry-After"])
            outcomes.append("minute" if wait <= 60 else "hour")
        else:
            outcomes.append("ok")
    return outcomes


async def test_both_storages_count_the_same_sequence_identically(
    own_redis: RedisServer, limiter_for: LimiterFactory
) -> None:
    # The hour limit first: a storage that counted it before refusing on the minute limit would
    # fill the hour with refused hits, and the fourth refusal would say "an hour".
    limits = "3/hour;2/minute"
    shared, _ = limiter_for(own_redis.url, limits)
    in_process, _ = limiter_for(None, limits)
    expected = ["ok", "ok", "minute", "minute", "minute", "minute"]
    assert await _outcomes(shared, 6) == expected
    assert await _outcomes(in_process, 6) == expected


async def test_a_refused_hit_counts_under_no_limit(
    own_redis: RedisServer, admin: redis_sync.Redis, limiter_for: LimiterFactory
) -> None:
    limiter, metrics = limiter_for(own_redis.url, "3/minute;5/hour")
    for _ in range(3):
        await limiter.check(RouteClass.READ, "user:a")
    for _ in range(2):
        with pytest.raises(RateLimitExceededError) as refused:
            await limiter.check(RouteClass.READ, "user:a")
        assert refused.value.headers is not None
        assert 58 <= int(refused.value.headers["Retry-After"]) <= 60
    keys = sorted(admin.keys("ratelimit:read:user:a:*"))
    assert keys == ["ratelimit:read:user:a:3 per 1 minute", "ratelimit:read:user:a:5 per 1 hour"]
    assert [admin.llen(key) for key in keys] == [3, 3]  # the refused hits left no trace
    assert 0 < admin.ttl(keys[0]) <= 60 and 3500 < admin.ttl(keys[1]) <= 3600
    await limiter.check(RouteClass.READ, "user:b")  # another caller, its own window
    assert metrics.rejections.labels("read")._value.get() == 2
    assert metrics.storage_errors._value.get() == 0


async def test_retry_after_is_when_the_oldest_hit_leaves_the_window(
    own_redis: RedisServer, limiter_for: LimiterFactory
) -> None:
    limiter, _ = limiter_for(own_redis.url, "2/2 seconds")
    await limiter.check(RouteClass.READ, "ip:10.0.0.1")
    await limiter.check(RouteClass.READ, "ip:10.0.0.1")
    with pytest.raises(RateLimitExceededError) as refused:
        await limiter.check(RouteClass.READ, "ip:10.0.0.1")
    assert refused.value.headers == {"Retry-After": "2"}
    await asyncio.sleep(2.05)
    await limiter.check(RouteClass.READ, "ip:10.0.0.1")  # the window moved on


async def test_the_script_is_loaded_again_after_redis_forgets_it(
    own_redis: RedisServer, admin: redis_sync.Redis, limiter_for: LimiterFactory
) -> None:
    limiter, metrics = limiter_for(own_redis.url, "2/minute")
    await limiter.check(RouteClass.READ, "user:c")
    admin.script_flush()  # as after a Redis restart or failover
    await limiter.check(RouteClass.READ, "user:c")
    with pytest.raises(RateLimitExceededError):
        await limiter.check(RouteClass.READ, "user:c")
    assert metrics.storage_errors._value.get() == 0


async def test_a_redis_error_reply_falls_back_to_process_limits(
    own_redis: RedisServer, admin: redis_sync.Redis, limiter_for: LimiterFactory
) -> None:
    limiter, metrics = limiter_for(own_redis.url, "2/minute")
    admin.set("ratelimit:read:user:d:2 per 1 minute", "not a list")  # WRONGTYPE for the script
    await limiter.check(RouteClass.READ, "user:d")
    await limiter.check(RouteClass.READ, "user:d")
    with pytest.raises(RateLimitExceededError) as refused:  # judged in memory, same limit
        await limiter.check(RouteClass.READ, "user:d")
    assert refused.value.headers is not None
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert metrics.storage_errors._value.get() == 1  # the breaker then skipped Redis
