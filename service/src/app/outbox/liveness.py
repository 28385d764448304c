"""The worker's liveness: judged by its own relay loop, not by the thread that serves /metrics.

prometheus_client serves /metrics from a thread of its own, so an answer there proves only
that the process exists. The relay loop beats a ``Heartbeat`` on every turn (a failed poll
is a turn too: a database outage is not cured by a restart, and shows in
``outbox_poll_failures_total`` and ``outbox_last_poll_success_timestamp_seconds`` instead).
``GET /health/live`` on the metrics port answers 503 once the last beat is older than
WORKER_LIVENESS_STALE_SECONDS: the loop is wedged (a blocked event loop, a hung await) and
the kubelet restarts the container.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

LIVENESS_PATH = "/health/live"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Heartbeat:
    """Monotonic time of the relay loop's last turn."""

    def __init__(self, stale_after_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after_seconds = stale_after_seconds
        self._clock = clock
        self._last = clock()  # a fresh worker gets one full period to make its first turn

    def beat(self) -> None:
        self._last = self._clock()

    def age_seconds(self) -> float:
        return self._clock() - self._last

    def alive(self) -> bool:
        return self.age_seconds() <= self.stale_after_seconds


def metrics_and_liveness_app(
    registry: CollectorRegistry, heartbeat: Heartbeat
) -> Callable[..., Iterable[bytes]]:
    """WSGI app: /health/live from the heartbeat, everything else is the metrics exposition."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != LIVENESS_PATH:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        age = round(heartbeat.age_seconds(), 3)
        alive = heartbeat.alive()
        body = json.dumps(
            {"status": "ok" if alive else "stalled", "loopAgeSeconds": age}, separators=(",", ":")
        ).encode()
        status = "200 OK" if alive else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no access log
        pass


def start_server(
    host: str, port: int, registry: CollectorRegistry, heartbeat: Heartbeat
) -> ThreadingWSGIServer:
    """Serve /metrics and /health/live on host:port from a daemon thread (raises OSError if taken)."""

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    httpd = make_server(
        host, port, metrics_and_liveness_app(registry, heartbeat), Server, handler_class=_QuietHandler
    )
    threading.Thread(target=httpd.serve_forever, name="worker-metrics", daemon=True).start()
    return httpd
