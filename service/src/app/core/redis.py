"""The one way to build a Redis client in this service: bounded by timeouts, at most one quick retry.

redis-py's default policy retries three times with up to a second of backoff; behind a
request that turns a dead Redis into multi-second stalls. Here every command is bounded
by REDIS_TIMEOUT_SECONDS (connect and read), and only one retry with a short jittered
backoff is made, for the transient errors redis-py marks as safe (connection and timeout
errors). Callers that must fail fast (readiness) pass retries=0.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from app.core.settings import Settings

_RETRY_BACKOFF = ExponentialWithJitterBackoff(base=0.02, cap=0.1)


def create_redis_client(settings: Settings, *, retries: int = 1) -> Redis:
    """A client for REDIS_URL; raises ValueError when Redis is not configured."""
    if settings.redis_url is None:
        raise ValueError("REDIS_URL is not set")
    timeout = settings.redis_timeout_seconds
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(_RETRY_BACKOFF, retries),
        health_check_interval=30,
        client_name=settings.service_name,
    )
