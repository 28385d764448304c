"""The moving-window script on a real Redis: all-or-nothing across limits, exact Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis as redis_sync
from prometheus_client import CollectorRegistry

from app.ratelimit.limiter import RateLimiter, RateLimitExceededError, RateLimitMetrics, RouteClass
from service.tests.builders import make_settings
from testsupport.servers import RedisServer, redis_server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def admin(own_redis: RedisServer) -> Iterator[redis_sync.Redis]:
    with redis_sync.Redis.from_url(own_redis.url, decode_responses=True) as connection:
        yield connection


def limiter_for(redis_url: str, sqlite_url: str, read: str) -> tuple[RateLimiter, RateLimitMetrics]:
    metrics = RateLimitMetrics(CollectorRegistry())
    settings = make_settings(sqlite_url, redis_url=redis_url, rate_limit_enabled=True, rate_limit_read=read)
    return RateLimiter(settings, metrics), metrics


@pytest.fixture
async def closing() -> AsyncIterator[list[RateLimiter]]:
    limiters: list[RateLimiter] = []
    yield limiters
    for limiter in limiters:
        await limiter.close()


async def test_a_refused_hit_counts_under_no_limit(
    own_redis: RedisServer, admin: redis_sync.Redis, sqlite_url: str, closing: list[RateLimiter]
) -> None:
    limiter, metrics = limiter_for(own_redis.url, sqlite_url, "3/minute;5/hour")
    closing.append(limiter)
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
    own_redis: RedisServer, sqlite_url: str, closing: list[RateLimiter]
) -> None:
    limiter, _ = limiter_for(own_redis.url, sqlite_url, "2/2 seconds")
    closing.append(limiter)
    await limiter.check(RouteClass.READ, "ip:10.0.0.1")
    await limiter.check(RouteClass.READ, "ip:10.0.0.1")
    with pytest.raises(RateLimitExceededError) as refused:
        await limiter.check(RouteClass.READ, "ip:10.0.0.1")
    assert refused.value.headers == {"Retry-After": "2"}
    await asyncio.sleep(2.05)
    await limiter.check(RouteClass.READ, "ip:10.0.0.1")  # the window moved on


async def test_the_script_is_loaded_again_after_redis_forgets_it(
    own_redis: RedisServer, admin: redis_sync.Redis, sqlite_url: str, closing: list[RateLimiter]
) -> None:
    limiter, metrics = limiter_for(own_redis.url, sqlite_url, "2/minute")
    closing.append(limiter)
    await limiter.check(RouteClass.READ, "user:c")
    admin.script_flush()  # as after a Redis restart or failover
    await limiter.check(RouteClass.READ, "user:c")
    with pytest.raises(RateLimitExceededError):
        await limiter.check(RouteClass.READ, "user:c")
    assert metrics.storage_errors._value.get() == 0


async def test_a_redis_error_reply_falls_back_to_process_limits(
    own_redis: RedisServer, admin: redis_sync.Redis, sqlite_url: str, closing: list[RateLimiter]
) -> None:
    limiter, metrics = limiter_for(own_redis.url, sqlite_url, "2/minute")
    closing.append(limiter)
    admin.set("ratelimit:read:user:d:2 per 1 minute", "not a list")  # WRONGTYPE for the script
    await limiter.check(RouteClass.READ, "user:d")
    await limiter.check(RouteClass.READ, "user:d")
    with pytest.raises(RateLimitExceededError) as refused:  # judged in memory, same limit
        await limiter.check(RouteClass.READ, "user:d")
    assert refused.value.headers is not None
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 60
    assert metrics.storage_errors._value.get() == 1  # the breaker then skipped Redis
