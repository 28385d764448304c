"""Rate limits per route class, keyed by user or client IP, with the `limits` library.

Route classes (limits from settings, "N/period", several separated by ";"):
- read: GET/HEAD/OPTIONS on the API, per user when a valid token is presented, else per client IP;
- write: every other method, keyed the same way;
- login: per client IP + email (on top of write), so one address cannot be brute-forced;
- register: per client IP (on top of write).
Health probes and /metrics are not under the API routers and are never limited.

Moving window: at most N hits in any period-long window, and an exact Retry-After
(when the oldest hit leaves the window).

Storage: Redis when REDIS_URL is set, so every pod shares the counters; process memory
otherwise. When Redis fails (down, slow beyond REDIS_TIMEOUT_SECONDS), the request is
never refused because of it: the limiter logs a warning, counts
rate_limit_storage_errors_total, and judges requests from per-process memory counters
for RATE_LIMIT_REDIS_RETRY_SECONDS before trying Redis again (a circuit breaker), so a
dead Redis costs at most one timeout per retry period instead of one per request. The
limits are then per pod (looser by the number of pods) but never gone: logins stay
bounded. The client IP is the peer address after uvicorn's proxy-header handling
(FORWARDED_ALLOW_IPS), never a raw X-Forwarded-For.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, cast

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from starlette.exceptions import HTTPException

from app.core.circuit_breaker import CircuitBreaker
from app.core.redis import create_redis_client
from app.core.settings import Settings
from app.identity.presentation.dependencies import presented_principal

log = logging.getLogger(__name__)

# Methods that do not change state: the generous "read" class.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RouteClass(StrEnum):
    LOGIN = "login"
    REGISTER = "register"
    WRITE = "write"
    READ = "read"


class RateLimitMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rejections = Counter(
            "rate_limit_rejections_total",
            "Requests refused with 429, by route class.",
            ["route_class"],
            registry=registry,
        )
        self.storage_errors = Counter(
            "rate_limit_storage_errors_total",
            "Rate-limit storage (Redis) errors; each one fell back to per-process limits.",
            registry=registry,
        )


_metrics_by_registry: dict[int, RateLimitMetrics] = {}


def rate_limit_metrics_for(registry: CollectorRegistry) -> RateLimitMetrics:
    """One RateLimitMetrics per registry: app factories may run many times in one process (tests)."""
    if id(registry) not in _metrics_by_registry:
        _metrics_by_registry[id(registry)] = RateLimitMetrics(registry)
    return _metrics_by_registry[id(registry)]


class RateLimitExceededError(HTTPException):
    """An HTTPException, so the standard error handler renders the body and keeps Retry-After."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            429,
            "Too many requests: retry after the number of seconds in Retry-After",
            headers={"Retry-After": str(retry_after_seconds)},
        )


class RateLimiter:
    def __init__(self, settings: Settings, metrics: RateLimitMetrics | None = None) -> None:
        self.enabled = settings.rate_limit_enabled
        self._metrics = metrics
        self._limits: dict[RouteClass, list[RateLimitItem]] = {
            RouteClass.LOGIN: parse_many(settings.rate_limit_login),
            RouteClass.REGISTER: parse_many(settings.rate_limit_register),
            RouteClass.WRITE: parse_many(settings.rate_limit_write),
            RouteClass.READ: parse_many(settings.rate_limit_read),
        }
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._redis: Redis | None = None
        self._shared: MovingWindowRateLimiter | None = None
        if settings.redis_url is not None:
            # No retries: a failed call falls back at once; the breaker decides when to try again.
            self._redis = create_redis_client(settings, retries=0)
            pool = cast(str, self._redis.connection_pool)  # typed as options, passed to redis-py as is
            storage = RedisStorage(
                f"async+{settings.redis_url}",
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix="ratelimit",
                connection_pool=pool,
            )
            self._shared = MovingWindowRateLimiter(storage)
        self._timeout = settings.redis_timeout_seconds
        self._breaker = CircuitBreaker(
            "rate_limit_storage", failure_threshold=1, reset_seconds=settings.rate_limit_redis_retry_seconds
        )

    async def check(self, route_class: RouteClass, *identity: str) -> None:
        """Count one hit for `identity` in the route class; raise 429 when over any of its limits."""
        if not self.enabled:
            return
        for item in self._limits[route_class]:
            allowed, limiter = await self._hit(item, route_class, identity)
            if not allowed:
                if self._metrics is not None:
                    self._metrics.rejections.labels(route_class.value).inc()
                raise RateLimitExceededError(await self._retry_after(limiter, item, route_class, identity))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    async def _hit(
        self, item: RateLimitItem, route_class: RouteClass, identity: tuple[str, ...]
    ) -> tuple[bool, MovingWindowRateLimiter]:
        if self._shared is not None and self._breaker.allow():
            try:
                # Socket timeouts bound each step; this bounds the whole call (connect + command).
                async with asyncio.timeout(self._timeout):
                    allowed = await self._shared.hit(item, route_class.value, *identity)
            except (StorageError, TimeoutError) as exc:
                self._breaker.record_failure()
                if self._metrics is not None:
                    self._metrics.storage_errors.inc()
                log.warning(
                    "rate-limit storage failed: using per-process limits",
                    extra={
                        "error": type(exc).__name__,
                        "retry_in_seconds": self._breaker.seconds_until_trial(),
                    },
                )
            else:
                self._breaker.record_success()
                return allowed, self._shared
        return await self._local.hit(item, route_class.value, *identity), self._local

    async def _retry_after(
        self,
        limiter: MovingWindowRateLimiter,
        item: RateLimitItem,
        route_class: RouteClass,
        identity: tuple[str, ...],
    ) -> int:
        try:
            async with asyncio.timeout(self._timeout):
                stats = await limiter.get_window_stats(item, route_class.value, *identity)
        except (StorageError, TimeoutError):
            return item.get_expiry()  # the safe upper bound: a whole window
        return max(1, math.ceil(stats.reset_time - time.time()))


async def get_rate_limiter(request: Request) -> RateLimiter:  # async: no threadpool hop
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


def client_ip_key(request: Request) -> str:
    # request.client is the peer after uvicorn's ProxyHeadersMiddleware (trusted proxies only).
    return f"ip:{request.client.host if request.client else 'unknown'}"


def email_key(email: str) -> str:
    # Hashed: counters in Redis should not hold addresses.
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


async def limit_by_method(request: Request) -> None:
    """Router-level limit for every API route: reads generous, writes moderate, per user or IP.

    Runs on every API request: it takes only the request (each sub-dependency would be one
    more node for FastAPI to solve per request)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.enabled:
        return
    caller = presented_principal(request)
    route_class = RouteClass.READ if request.method in _READ_METHODS else RouteClass.WRITE
    key = f"user:{caller.user_id}" if caller is not None else client_ip_key(request)
    await limiter.check(route_class, key)


def limit_per_client_ip(route_class: RouteClass) -> Callable[[Request, RateLimiter], Awaitable[None]]:
    """Route-level extra limit keyed by client IP: `dependencies=[Depends(limit_per_client_ip(...))]`."""

    async def dependency(request: Request, limiter: RateLimiterDep) -> None:
        await limiter.check(route_class, client_ip_key(request))

    return dependency
