"""Authentication, once per request: the caller is known before rate limiting and routing.

For every request under /api/ that presents a token (the `Authorization: Bearer` header, else
the httpOnly session cookie), this middleware verifies it (signature and claims) and confirms
the session (not revoked; a privileged role re-read from the database), and leaves in the
request state what everything after it reads:
- `principal`: the authenticated caller, or absent: the rate limiter's key, the role gates'
  subject (app.api.auth), the log lines' user id;
- `verified_token`: the token, even when revoked (logout revokes it);
- `authentication_failure`: why a presented token was refused, or what stopped the check
  (the database, for a privileged token). The middleware itself never raises: a role gate
  re-raises it inside the app, where the error handlers answer (401, or 503 while the
  database is down) like for any other route. Routes without a gate ignore it.
polar does the same (auth/middlewares.py, AuthSubjectMiddleware).
"""

from __future__ import annotations

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from app.identity.application.ports import TokenService
from app.identity.application.services import IdentityService
from app.kernel.errors import AuthenticationError
from app.kernel.request_context import set_user_id


def presented_token(scope: Scope, cookie_name: str) -> str | None:
    cookie_header = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, credentials = header.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"cookie":
            cookie_header = value.decode("latin-1")
    if cookie_header is None:
        return None
    token = cookie_parser(cookie_header).get(cookie_name)  # Starlette's own (lenient) parser
    return str(token) if token else None


class AuthenticationMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: TokenService,
        identity: IdentityService,
        cookie_name: str,
        prefix: str = "/api/",
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.identity = identity
        self.cookie_name = cookie_name
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            token = presented_token(scope, self.cookie_name)
            if token is not None:
                await self._authenticate(token, scope.setdefault("state", {}))
        await self.app(scope, receive, send)

    async def _authenticate(self, token: str, state: dict[str, object]) -> None:
        try:
            verified = self.tokens.verify(token)
        except AuthenticationError as exc:
            state["authentication_failure"] = exc
            return
        state["verified_token"] = verified
        set_user_id(str(verified.principal.user_id))
        try:
            state["principal"] = await self.identity.principal_for(verified)
        except Exception as exc:
            state["authentication_failure"] = exc
