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
from app.observability.metrics import UNMATCHED_ROUTE, HttpMetrics

access_log = logging.getLogger("app.access")

# Probes and scrapes would drown the access log; their metrics are still counted.
_QUIET_PATHS = frozenset({"/health/live", "/health/ready", "/health", "/metrics"})


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestEdgeMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics | None) -> None:
        self.app = app
        self.metrics = metrics

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
        header = (b"x-request-id", request_id.encode())
        status_holder: dict[str, Any] = {"status": 500}

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        method = scope["method"]
        start = time.perf_counter()
        in_progress = None
        if self.metrics is not None:
            in_progress = self.metrics.in_progress.labels(method)
            in_progress.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            duration = time.perf_counter() - start
            status = str(status_holder["status"])
            route = route_template(scope)
            if in_progress is not None and self.metrics is not None:
                in_progress.dec()
                self.metrics.requests.labels(method, route, status).inc()
                self.metrics.duration.labels(method, route, status).observe(duration)
            if scope["path"] not in _QUIET_PATHS or status_holder["status"] >= 500:
                access_log.info(
                    "request",
                    extra={
                        "method": method,
                        "route": route,
                        "path": scope["path"],
                        "status": status_holder["status"],
                        "duration_ms": round(duration * 1000, 2),
                        "user_id": current_user_id(),
                    },
                )
