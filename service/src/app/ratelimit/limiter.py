"""Rate limits per route class, keyed by user or client IP.

Route classes (limits from settings, "N/period", several separated by ";"):
- read: GET/HEAD/OPTIONS on the API, per user when a valid token is presented, else per client IP;
- write: every other method, keyed the same way, except under /api/v1/auth/ (login, register,
  logout): always per client IP, so a token cannot lift an address's login budget;
- login: per client IP + email (on top of write), so one address cannot be brute-forced;
- login_account: per email from every address together (a slow, distributed guess);
- register: per client IP (on top of write).
Read and write are counted by RateLimitMiddleware for every path under /api/, before
routing; health probes and /metrics are outside it and never limited.

Moving window: at most N hits in any period-long window, and an exact Retry-After
(when the oldest hit leaves the window).

Storage: Redis when REDIS_URL is set, so every pod shares the counters (one Lua script per
check, MOVING_WINDOW_SCRIPT, over a pipelined connection); the `limits` library's moving
window in process memory otherwise. When Redis fails (down, slow beyond REDIS_TIMEOUT_SECONDS), the request is
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
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from prometheus_client import CollectorRegistry, Counter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response
from app.kernel.circuit_breaker import CircuitBreaker
from app.kernel.principal import Principal
from app.persistence.redis import PipelinedRedis, RedisReplyError
from app.settings import Settings

log = logging.getLogger(__name__)

# Methods that do not change state: the generous "read" class.
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RouteClass(StrEnum):
    LOGIN = "login"
    LOGIN_ACCOUNT = "login_account"
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


class RateLimitExceededError(HTTPException):
    """An HTTPException, so the standard error handler renders the body and keeps Retry-After."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            429,
            "Too many requests: retry after the number of seconds in Retry-After",
            headers={"Retry-After": str(retry_after_seconds)},
        )


# Moving window over every limit of a route class, all or nothing: the hit counts under
# each limit or under none. KEYS[i]: a list of hit times, newest first, at most its limit
# long; ARGV[2i-1]: that limit; ARGV[2i]: its window in seconds. Returns 0 (counted) or
# the whole seconds until the hit would be allowed (Retry-After, in the same round trip).
# Redis's clock, so pods with skewed clocks agree (TIME in scripts: Redis 5 or later).
MOVING_WINDOW_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local wait = 0
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local oldest = redis.call('LINDEX', key, limit - 1)
  if oldest and tonumber(oldest) + window > now then
    wait = math.max(wait, tonumber(oldest) + window - now)
  end
end
if wait > 0 then return math.max(1, math.ceil(wait)) end
local stamp = string.format('%.6f', now)
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  redis.call('LPUSH', key, stamp)
  redis.call('LTRIM', key, 0, limit - 1)
  redis.call('EXPIRE', key, window)
end
return 0
"""
_SCRIPT_SHA = hashlib.sha1(MOVING_WINDOW_SCRIPT.encode(), usedforsecurity=False).hexdigest()
_STORAGE_ERRORS = (RedisReplyError, OSError)  # OSError covers ConnectionError and TimeoutError


class RateLimiter:
    """Both storages judge a hit the same way: under every limit of its route class or under
    none (all or nothing), Retry-After from the limit that frees up last (a test runs one
    sequence against both)."""

    def __init__(
        self, settings: Settings, redis: PipelinedRedis | None, metrics: RateLimitMetrics | None = None
    ) -> None:
        self.enabled = settings.rate_limit_enabled
        self._metrics = metrics
        self._limits: dict[RouteClass, list[RateLimitItem]] = {
            RouteClass.LOGIN: parse_many(settings.rate_limit_login),
            RouteClass.LOGIN_ACCOUNT: parse_many(settings.rate_limit_login_account),
            RouteClass.REGISTER: parse_many(settings.rate_limit_register),
            RouteClass.WRITE: parse_many(settings.rate_limit_write),
            RouteClass.READ: parse_many(settings.rate_limit_read),
        }
        # Per route class, built once: each limit's key suffix, and the script's arguments,
        # (limit, window seconds) for each of its limits.
        self._key_suffixes = {
            route_class: [f":{item}" for item in items] for route_class, items in self._limits.items()
        }
        self._windows = {
            route_class: [arg for item in items for arg in (item.amount, item.get_expiry())]
            for route_class, items in self._limits.items()
        }
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._redis = redis  # the process's one Redis client (the container's), not closed here
        self._timeout = settings.redis_timeout_seconds
        self._breaker = CircuitBreaker(
            "rate_limit_storage", failure_threshold=1, reset_seconds=settings.rate_limit_redis_retry_seconds
        )

    async def check(self, route_class: RouteClass, *identity: str) -> None:
        """Count one hit for `identity` in the route class; raise 429 when over any of its limits."""
        if not self.enabled:
            return
        retry_after = await self._shared_wait(route_class, identity)
        if retry_after is None:  # no shared answer: judged by this process alone
            retry_after = await self._local_wait(route_class, identity)
        if retry_after:
            if self._metrics is not None:
                self._metrics.rejections.labels(route_class.value).inc()
            raise RateLimitExceededError(retry_after)

    async def _shared_wait(self, route_class: RouteClass, identity: tuple[str, ...]) -> int | None:
        """Seconds to wait (0: counted) by the counters every pod shares, or None without Redis."""
        if self._redis is None or not self._breaker.allow():
            return None
        prefix = f"ratelimit:{route_class.value}:{':'.join(identity)}"
        keys = [prefix + suffix for suffix in self._key_suffixes[route_class]]
        try:
            # Connect and command in one bound: a hung Redis costs one timeout per retry period.
            async with asyncio.timeout(self._timeout):
                wait = await self._run_script(keys, self._windows[route_class])
        except _STORAGE_ERRORS as exc:
            self._breaker.record_failure()
            if self._metrics is not None:
                self._metrics.storage_errors.inc()
            log.warning(
                "rate-limit storage failed: using per-process limits",
                extra={"error": type(exc).__name__, "retry_in_seconds": self._breaker.seconds_until_trial()},
            )
            return None
        self._breaker.record_success()
        return wait

    async def _run_script(self, keys: list[str], args: list[int]) -> int:
        assert self._redis is not None
        try:
            return int(await self._redis.execute("EVALSHA", _SCRIPT_SHA, len(keys), *keys, *args))
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            # First call on this Redis (or after a restart or SCRIPT FLUSH): EVAL caches it.
            return int(await self._redis.execute("EVAL", MOVING_WINDOW_SCRIPT, len(keys), *keys, *args))

    async def _local_wait(self, route_class: RouteClass, identity: tuple[str, ...]) -> int:
        """As the script does: test every limit first, count under all of them only if all allow."""
        items = self._limits[route_class]
        refused = [item for item in items if not await self._local.test(item, route_class.value, *identity)]
        if refused:
            resets = [
                (await self._local.get_window_stats(item, route_class.value, *identity)).reset_time
                for item in refused
            ]
            return max(1, math.ceil(max(resets) - time.time()))
        for item in items:
            await self._local.hit(item, route_class.value, *identity)
        return 0


async def get_rate_limiter(request: Request) -> RateLimiter:  # async: no threadpool hop
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


def client_ip_key(request: Request) -> str:
    # request.client is the peer after uvicorn's ProxyHeadersMiddleware (trusted proxies only).
    return f"ip:{request.client.host if request.client else 'unknown'}"


class RateLimitMiddleware:
    """Counts every API request in its route class (read or write), per user or client IP.

    Before routing, so unknown paths and floods of bad tokens are limited too; as an ASGI
    layer rather than a router dependency, so it is not one more node for FastAPI to solve
    on every request. Probes and /metrics are outside `prefix` and never limited. A refusal
    is the standard error body with Retry-After, sent inside the edge middleware (request
    id, security headers, access log and metrics like any response).
    """

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, prefix: str = "/api/", per_ip_prefix: str = "/api/v1/auth/"
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.prefix = prefix
        # Login and register are budgeted per client IP whatever token comes along: a token
        # (any throwaway account's) must not buy an IP more password guesses.
        self.per_ip_prefix = per_ip_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.limiter.enabled and scope["path"].startswith(self.prefix):
            # The caller, as authenticated before this middleware (app.web.authentication).
            caller: Principal | None = (
                None
                if scope["path"].startswith(self.per_ip_prefix)
                else scope.get("state", {}).get("principal")
            )
            route_class = RouteClass.READ if scope["method"] in _READ_METHODS else RouteClass.WRITE
            key = f"user:{caller.user_id}" if caller is not None else client_ip_key(Request(scope))
            try:
                await self.limiter.check(route_class, key)
            except RateLimitExceededError as exc:
                refusal = error_response(
                    None, exc.status_code, exc.detail, headers=dict(exc.headers or {}), path=scope["path"]
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def limit_per_client_ip(route_class: RouteClass) -> Callable[[Request, RateLimiter], Awaitable[None]]:
    """Route-level extra limit keyed by client IP: `dependencies=[Depends(limit_per_client_ip(...))]`."""

    async def dependency(request: Request, limiter: RateLimiterDep) -> None:
        await limiter.check(route_class, client_ip_key(request))

    return dependency
