"""HTTP security at the edge: security headers, trusted Host names, CORS.

`install_http_security` adds the three middlewares in their order; create_app calls it
between the body-size limit (inner) and the request-edge middleware (outermost), so
every response, including 400/413/429 and preflights, carries the security headers
and the request id.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.http import EDGE_HEADERS_STATE, error_response
from app.core.settings import Settings

# The API serves JSON only: nothing may load, run or frame anything.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI (FastAPI's /docs) loads its bundle and stylesheet from jsDelivr and starts with
# an inline script; it then fetches /openapi.json from this origin.
DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Sent over https only (a browser ignores it on http, and it must not pin a plain-http dev host).
HSTS = "max-age=31536000; includeSubDomains"

Header = tuple[bytes, bytes]
_COMMON_HEADERS: tuple[Header, ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

_SECURITY_HEADER_NAMES = frozenset(
    name for headers in (_COMMON_HEADERS, ((b"content-security-policy", b""),)) for name, _ in headers
) | {b"strict-transport-security"}

CORS_METHODS = ["GET", "POST", "PATCH", "DELETE", "OPTIONS"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "Location", "Retry-After", "Idempotent-Replayed"]

# Kubelet probes and Prometheus scrapes address a pod by its IP, not by a public host name.
_HOST_CHECK_EXEMPT_PREFIXES = ("/health", "/metrics")


def _header_set(csp: str, https: bool) -> tuple[Header, ...]:
    headers = (*_COMMON_HEADERS, (b"content-security-policy", csp.encode()))
    return (*headers, (b"strict-transport-security", HSTS.encode())) if https else headers


# The four possible sets, built once instead of per response: (docs page?, https?) -> headers.
_HEADER_SETS = {
    (docs, https): _header_set(DOCS_CSP if docs else API_CSP, https)
    for docs in (False, True)
    for https in (False, True)
}


def security_headers(scope: Scope, docs_paths: frozenset[str]) -> tuple[Header, ...]:
    # The scheme is https only after uvicorn's proxy-header handling trusted X-Forwarded-Proto.
    return _HEADER_SETS[scope["path"] in docs_paths, scope.get("scheme") == "https"]


class SecurityHeadersMiddleware:
    """Adds the security headers to every response (a route's own value wins)."""

    def __init__(self, app: ASGIApp, docs_paths: Sequence[str] = ()) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = security_headers(scope, self.docs_paths)
        # Unhandled-error 500s are sent outside this middleware; their handler adds these.
        scope.setdefault("state", {}).setdefault(EDGE_HEADERS_STATE, []).extend(headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = message.get("headers", [])
                present = {name.lower() for name, _ in own} & _SECURITY_HEADER_NAMES
                message["headers"] = (
                    [*own, *(header for header in headers if header[0] not in present)]
                    if present
                    else [*own, *headers]
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AllowListCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, stricter for origins not on the list: no CORS header at all.

    (Starlette still sends Allow-Credentials and Expose-Headers to them, and answers their
    preflight in plain text; here the preflight gets the standard error body.)
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = Headers(scope=scope).get("origin") if scope["type"] == "http" else None
        if origin is None or self.is_allowed_origin(origin):
            await super().__call__(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and any(
            k == b"access-control-request-method" for k, _ in scope["headers"]
        ):
            response = error_response(None, 400, "Disallowed CORS origin", path=scope["path"])
            await response(scope, receive, send)
            return

        async def send_varying_by_origin(message: Message) -> None:
            # The answer depends on Origin: shared caches must not serve it to an allowed one.
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"vary", b"Origin")]
            await send(message)

        await self.app(scope, receive, send_varying_by_origin)


def validate_host_patterns(patterns: Sequence[str]) -> None:
    for pattern in patterns:
        if "*" in pattern[1:] or (
            pattern.startswith("*") and pattern != "*" and not pattern.startswith("*.")
        ):
            raise ValueError(f"TRUSTED_HOSTS pattern {pattern!r}: use 'name', '*.domain' or '*'")


def _host_name(host_header: str) -> str:
    """The name part of a Host header: 'api.example.com:443' -> 'api.example.com', '[::1]:80' -> '::1'."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.split(":", 1)[0]


class TrustedHostMiddleware:
    """Refuses requests whose Host is not allowed (400 with the standard error body).

    Patterns as in Starlette: exact names, '*.example.com' for subdomains, '*' for any.
    Health and metrics paths are exempt (probes and scrapes use the pod IP).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        validate_host_patterns(allowed_hosts)
        self.app = app
        self.allow_any = "*" in allowed_hosts
        self.exact = frozenset(p.lower() for p in allowed_hosts if not p.startswith("*"))
        self.suffixes = tuple(p[1:].lower() for p in allowed_hosts if p.startswith("*."))

    def allows(self, host: str) -> bool:
        return self.allow_any or host in self.exact or (bool(host) and host.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] != "http" or scope["path"].startswith(_HOST_CHECK_EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        host_header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if self.allows(_host_name(host_header)):
            await self.app(scope, receive, send)
            return
        response = error_response(None, 400, "Invalid host header", path=scope["path"])
        await response(scope, receive, send)


def install_http_security(app: FastAPI, settings: Settings) -> None:
    """Add CORS (innermost of the three), trusted hosts, then security headers (outermost)."""
    validate_host_patterns(settings.trusted_hosts)  # now, not at the first request
    if settings.cors_origins:
        app.add_middleware(
            AllowListCORSMiddleware,
            allow_origins=settings.cors_origins,
            # Credentials (cookies) only ever with an explicit list; Settings refuses '*' in production.
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts)
    docs_paths = [path for path in (app.docs_url, app.swagger_ui_oauth2_redirect_url) if path]
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=docs_paths)
