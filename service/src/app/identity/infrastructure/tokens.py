"""JWT access tokens (PyJWT): algorithm pinned, exp/iat/sub/iss/aud required and checked."""

from __future__ import annotations

import uuid
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
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl_seconds
        self._algorithm = algorithm
        self._leeway = leeway_seconds

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
            return Principal(user_id=uuid.UUID(claims["sub"]), role=Role(claims["role"]))
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise AuthenticationError("Invalid or expired token") from exc
