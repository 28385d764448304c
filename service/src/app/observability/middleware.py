"""One pure-ASGI middleware for the request edge: request id, access log, RED metrics.

Pure ASGI (not BaseHTTPMiddleware) keeps the per-request overhead small and lets
the request id reach every response, including errors and 500s.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.context import (
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
    def __init__(self, app: ASGIApp, metrics: HttpMetrics | None) -> None:
        self.app = app
        self.metrics = metrics
        self._in_progress: dict[str, Any] = {}

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
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_header = (b"x-request-id", request_id.encode())
        status = 500  # what the client sees if the app dies before answering

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), request_id_header]
                # While draining, ask keep-alive clients to reconnect (to another pod).
                if _draining(scope):
                    headers.append(_CONNECTION_CLOSE)
                message["headers"] = headers
            await send(message)

        method = method_label(scope["method"])
        start = time.perf_counter()
        in_progress: Any = None
        if self.metrics is not None:
            in_progress = self._in_progress.get(method)
            if in_progress is None:
                in_progress = self._in_progress[method] = self.metrics.in_progress.labels(method)
            in_progress.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            duration = time.perf_counter() - start
            route = route_template(scope)
            if self.metrics is not None:
                in_progress.dec()
                self.metrics.observe(method, route, status, duration)
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
