"""One pure-ASGI middleware for the request edge: request id, access log, RED metrics,
and (given an EdgeSecurity) the trusted-Host check and the security headers.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request overhead small and lets
the request id reach every response, including errors and 500s. The security work runs
in this same call and send wrapper rather than in layers of its own: each layer costs an
await and a send wrapper on every request.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import EDGE_HEADERS_STATE
from app.edge.security import EdgeSecurity, Header, with_security_headers
from app.kernel.request_context import (
    accept_or_generate_request_id,
    current_user_id,
    set_request_id,
    set_user_id,
)
from app.observability.metrics import UNMATCHED_ROUTE, HttpMetrics, method_label

access_log = logging.getLogger("app.access")

# Probes and scrapes would drown the access log; their metrics are still counted.
_QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/health", "/metrics"})
_CONNECTION_CLOSE = (b"connection", b"close")


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


def _draining(scope: Scope) -> bool:
    app = scope.get("app")
    return bool(getattr(getattr(app, "state", None), "draining", False))


class RequestEdgeMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: HttpMetrics | None, security: EdgeSecurity | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = accept_or_generate_request_id(incoming)
        set_request_id(request_id)
        set_user_id(None)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        request_id_header = (b"x-request-id", request_id.encode())
        status = 500  # what the client sees if the app dies before answering
        security = self.security
        security_headers: tuple[Header, ...] = ()
        if security is not None:
            security_headers = security.response_headers(scope)
            # Unhandled-error 500s are sent by ServerErrorMiddleware, outside this send
            # wrapper; their handler adds these headers (and the request id) itself.
            state.setdefault(EDGE_HEADERS_STATE, []).extend(security_headers)

        async def send_with_edge_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                own = message.get("headers", [])
                headers = with_security_headers(own, security_headers) if security_headers else [*own]
                headers.append(request_id_header)
                # While draining, ask keep-alive clients to reconnect (to another pod).
                if _draining(scope):
                    headers.append(_CONNECTION_CLOSE)
                message["headers"] = headers
            await send(message)

        method = method_label(scope["method"])
        start = time.perf_counter()
        metrics = self.metrics
        if metrics is not None:
            active = metrics.active
            if method not in active:
                metrics.track_in_progress(method)
            active[method] += 1
        try:
            # The Host check runs after the request id and metrics start, so its 400 is
            # counted, logged and carries the request id and security headers like any other.
            refusal = security.refusal(scope) if security is not None else None
            if refusal is not None:
                await refusal(scope, receive, send_with_edge_headers)
            else:
                await self.app(scope, receive, send_with_edge_headers)
        finally:
            duration = time.perf_counter() - start
            route = route_template(scope)
            if metrics is not None:
                active[method] -= 1
                metrics.observe(method, route, status, duration)
            # A probe's 503 is the health signal itself (the readiness transition is logged
            # once by the health module); any other 5xx there is a fault worth a line.
            if scope["path"] not in _QUIET_PATHS or (status >= 500 and status != 503):
                access_log.log(
                    logging.ERROR if status >= 500 else logging.INFO,
                    "request",
                    extra={
                        "method": method,
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                        "user_id": current_user_id(),
                    },
                )
