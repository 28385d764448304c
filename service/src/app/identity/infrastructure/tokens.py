"""JWT access tokens (PyJWT): algorithm pinned, exp/iat/sub/iss/aud required and checked."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

import jwt

from app.core.clock import utcnow
from app.core.errors import AuthenticationError
from app.core.principal import Principal, Role
from app.identity.application.ports import IssuedToken

_REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud", "role"]


class JwtTokenService:
    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int,
        algorithm: str = "HS256",
        leeway_seconds: int = 10,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        self._algorithm = algorithm
        self._leeway = leeway_seconds
        # token -> (principal, the time it stops being valid). Verification is a pure function
        # of the token and the key, and every other check (signature, alg, iss, aud, iat, role)
        # can only stay true as time passes: a verified token is re-checked for expiry only.
        # Only tokens that passed verification get in (garbage cannot evict real entries);
        # least recently used out first. Saves PyJWT's ~50 us per request (two per request:
        # the rate-limit key and the route's authentication).
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_size = cache_size
        self._clock = clock

    def issue(self, principal: Principal) -> IssuedToken:
        now = utcnow()
        claims = {
            "sub": str(principal.user_id),
            # The role rides in the token so authorization needs no query per request;
            # a role change applies from the next login (tokens live ACCESS_TOKEN_TTL_SECONDS).
            "role": principal.role.value,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "exp": now + timedelta(seconds=self._ttl),
            "jti": uuid.uuid4().hex,
        }
        return IssuedToken(jwt.encode(claims, self._secret, algorithm=self._algorithm), self._ttl)

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            principal, valid_until = cached
            if self._clock() < valid_until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]  # expired: PyJWT below gives the error
        principal, expires_at = self._decode(token)
        self._verified[token] = (principal, expires_at + self._leeway)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],  # pinned: rejects alg=none and key confusion
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
            principal = Principal(user_id=uuid.UUID(claims["sub"]), role=Role(claims["role"]))
            return principal, float(claims["exp"])
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise AuthenticationError("Invalid or expired token") from exc
