"""HTTP security at the edge: security headers, trusted Host names, CORS.

CORS is Starlette's middleware (added only when CORS_ORIGINS is set); the Host check and
the security headers are `EdgeSecurity`, run by RequestEdgeMiddleware in its own call
(one layer fewer per request), so every response, including 400/413/429 and preflights,
carries the security headers and the request id.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.api.errors import error_response

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


def with_security_headers(own: list[Header], headers: tuple[Header, ...]) -> list[Header]:
    """A response's own headers plus the security headers it does not set itself (its value wins)."""
    present = {name.lower() for name, _ in own} & _SECURITY_HEADER_NAMES
    return (
        [*own, *(header for header in headers if header[0] not in present)] if present else [*own, *headers]
    )


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
    """The name part of a Host header: 'api.example.com:443' -> 'api.example.com', '[::1]:80' -> '::1'.

    A fully qualified name's trailing dot ('api.example.com.') names the same host.
    """
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.split(":", 1)[0].removesuffix(".")


class EdgeSecurity:
    """What the request-edge middleware does for HTTP security, inside its one call.

    Not a middleware of its own: each pure-ASGI layer costs an await and a send wrapper on
    every request, so RequestEdgeMiddleware checks the Host before the app runs and adds
    the security headers in the same `http.response.start` rewrite as the request id.

    Trusted hosts: requests whose Host is not allowed get 400 with the standard error body.
    Patterns as in Starlette: exact names, '*.example.com' for subdomains, '*' for any.
    Health and metrics paths are exempt (probes and scrapes use the pod IP).
    """

    def __init__(self, allowed_hosts: Sequence[str], docs_paths: Sequence[str] = ()) -> None:
        validate_host_patterns(allowed_hosts)
        self.allow_any = "*" in allowed_hosts
        self.exact = frozenset(p.lower() for p in allowed_hosts if not p.startswith("*"))
        self.suffixes = tuple(p[1:].lower() for p in allowed_hosts if p.startswith("*."))
        self.docs_paths = frozenset(docs_paths)

    def allows(self, host: str) -> bool:
        return self.allow_any or host in self.exact or (bool(host) and host.endswith(self.suffixes))

    def response_headers(self, scope: Scope) -> tuple[Header, ...]:
        return security_headers(scope, self.docs_paths)

    def refusal(self, scope: Scope) -> Response | None:
        """The 400 for a request with a Host that is not allowed, else None."""
        if self.allow_any or scope["path"].startswith(_HOST_CHECK_EXEMPT_PREFIXES):
            return None
        host_header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "")
        if self.allows(_host_name(host_header)):
            return None
        return error_response(None, 400, "Invalid host header", path=scope["path"])
