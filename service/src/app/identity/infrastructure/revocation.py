"""Token revocation: a denylist in Redis, shared by every pod, mirrored in process memory.

Two kinds of entry, each living only as long as the tokens it refuses could:
- `revoked-token:<jti>`: one token (logout), until that token's own expiry;
- `token-version:<user id>` = N: every token of the user issued below version N (password
  or role change), for ACCESS_TOKEN_TTL_SECONDS (by then every older token has expired).
A check is one MGET for both, on the process's one Redis client (the rate limiter's too),
since every authenticated request makes one.

When Redis fails (down, or slower than REDIS_TIMEOUT_SECONDS): requests are not refused
because of it. The check falls back to this process's own entries (every revocation is also
recorded here) for RATE_LIMIT_REDIS_RETRY_SECONDS before Redis is tried again (a circuit
breaker: one timeout per period, not per request), and a warning is logged. So during an
outage a revocation made by this pod still holds here, one made by another pod only after
Redis is back (or the token expires); privileged roles do not depend on this list at all:
their token version and role are read from the database on every request
(IdentityService.principal_for), so a demotion or password change ends an admin's or
manager's session at once, with or without Redis. Without REDIS_URL (one process, local
development) the process memory is the list.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from app.identity.application.ports import VerifiedToken
from app.kernel.circuit_breaker import CircuitBreaker
from app.persistence.redis import PipelinedRedis, RedisReplyError

log = logging.getLogger(__name__)

_TOKEN_PREFIX = "revoked-token:"  # noqa: S105 - a Redis key prefix, not a secret
_VERSION_PREFIX = "token-version:"
_PRUNE_AT = 10_000


class TokenDenylist:
    def __init__(
        self,
        redis: PipelinedRedis | None,
        *,
        token_ttl_seconds: int,
        leeway_seconds: int = 10,
        timeout_seconds: float = 0.5,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._version_ttl = token_ttl_seconds + leeway_seconds
        self._leeway = leeway_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._breaker = CircuitBreaker("token_denylist", failure_threshold=1, reset_seconds=retry_seconds)
        # This process's own entries: jti -> expiry; user -> (minimum version, expiry).
        self._tokens: dict[str, float] = {}
        self._versions: dict[uuid.UUID, tuple[int, float]] = {}

    async def revoke(self, token: VerifiedToken) -> None:
        ttl = max(1, int(token.expires_at - self._clock()) + self._leeway)
        self._prune()
        self._tokens[token.token_id] = self._clock() + ttl
        await self._write(_TOKEN_PREFIX + token.token_id, "1", ttl)

    async def revoke_versions_below(self, user_id: uuid.UUID, version: int) -> None:
        self._prune()
        self._versions[user_id] = (version, self._clock() + self._version_ttl)
        await self._write(_VERSION_PREFIX + str(user_id), str(version), self._version_ttl)

    async def is_revoked(self, token: VerifiedToken) -> bool:
        shared = await self._shared_entries(token)
        if shared is not None:
            revoked_token, minimum_version = shared
            if revoked_token or (minimum_version is not None and token.version < minimum_version):
                return True
        return self._locally_revoked(token)

    def _prune(self) -> None:
        # Entries are otherwise dropped when looked up after their expiry: bound the memory.
        if len(self._tokens) >= _PRUNE_AT:
            now = self._clock()
            self._tokens = {jti: until for jti, until in self._tokens.items() if until > now}
        if len(self._versions) >= _PRUNE_AT:
            now = self._clock()
            self._versions = {user: entry for user, entry in self._versions.items() if entry[1] > now}

    def _locally_revoked(self, token: VerifiedToken) -> bool:
        now = self._clock()
        expiry = self._tokens.get(token.token_id)
        if expiry is not None:
            if now < expiry:
                return True
            del self._tokens[token.token_id]
        entry = self._versions.get(token.principal.user_id)
        if entry is not None:
            minimum, until = entry
            if now < until:
                return token.version < minimum
            del self._versions[token.principal.user_id]
        return False

    async def _shared_entries(self, token: VerifiedToken) -> tuple[bool, int | None] | None:
        """(token revoked, minimum version) from Redis; None without Redis or while it fails."""
        if self._redis is None or not self._breaker.allow():
            return None
        keys = (_TOKEN_PREFIX + token.token_id, _VERSION_PREFIX + str(token.principal.user_id))
        try:
            async with asyncio.timeout(self._timeout):
                revoked, version = await self._redis.execute("MGET", *keys)
        except (RedisReplyError, OSError) as exc:  # OSError covers ConnectionError and TimeoutError
            self._failed(exc)
            return None
        self._breaker.record_success()
        return revoked is not None, int(version) if version is not None else None

    async def _write(self, key: str, value: str, ttl_seconds: int) -> None:
        if self._redis is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.execute("SET", key, value, "EX", ttl_seconds)
        except (RedisReplyError, OSError) as exc:
            # Recorded in this process only: other pods learn of it when it expires, or not at
            # all (see the module docstring). The caller's own session still ends here.
            self._failed(exc)
            return
        self._breaker.record_success()

    def _failed(self, exc: BaseException) -> None:
        self._breaker.record_failure()
        log.warning(
            "token denylist storage failed: using this process's revocations only",
            extra={"error": type(exc).__name__, "retry_in_seconds": self._breaker.seconds_until_trial()},
        )
