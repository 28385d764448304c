"""A real webhook receiver for the worker and chaos tests: an HTTP server on a free loopback port.

It runs in its own threads, so it answers the same way whether the worker under test
runs in the test's event loop or as a separate process. Behaviour is switched by the
test (status, delay, stall, down) and every request is recorded. It keeps what a
de-duplicating receiver keeps: the event ids it answered with a 2xx.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    event_id: str
    body: dict[str, Any]
    raw_body: bytes  # as received: what a signature covers
    headers: dict[str, str]
    arrived: float  # time.monotonic()


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops the connects of a 10-event batch: SYN retries cost 1 s.
    request_queue_size = 128


@dataclass
class Receiver:
    """`status`/`delay` apply to the next requests; requests arriving while stalled hang until released."""

    status: int = 200
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    # Event ids of requests answered with a 2xx (what a de-duplicating receiver would keep).
    accepted: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    # Requests wait on the gate current at their arrival; every gate ever made, to release on stop.
    _gate: threading.Event = field(default_factory=threading.Event)
    _gates: list[threading.Event] = field(default_factory=list)
    _port: int = 0  # kept while down, to come back on the same address

    def __post_init__(self) -> None:
        self._gate.set()
        self._gates.append(self._gate)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks/projects"

    def stall(self) -> None:
        """Requests from now on hang (until `release` or `stop`)."""
        with self._lock:
            self._gate = threading.Event()
            self._gates.append(self._gate)

    def answer_new_requests(self) -> None:
        """New requests are answered again; the ones already hanging stay hung."""
        with self._lock:
            self._gate = threading.Event()
            self._gate.set()
            self._gates.append(self._gate)

    def release(self) -> None:
        with self._lock:
            for gate in self._gates:
                gate.set()

    def event_ids(self) -> list[str]:
        with self._lock:
            return [r.event_id for r in self.requests]

    def accepted_bodies(self) -> dict[str, list[bytes]]:
        """Raw bodies of the 2xx-answered requests, by event id (more than one: a redelivery)."""
        with self._lock:
            accepted = set(self.accepted)
            bodies: dict[str, list[bytes]] = {}
            for request in self.requests:
                if request.event_id in accepted:
                    bodies.setdefault(request.event_id, []).append(request.raw_body)
        return bodies

    def go_down(self) -> None:
        """Close the listening socket: new connections are refused (requests in flight finish)."""
        assert self._server is not None
        self._port = self._server.server_address[1]
        self._server.shutdown()
        self._server.server_close()

    def come_back(self) -> None:
        """Listen again on the same port."""
        self._serve(self._port)

    def wait_until(self, check: Callable[[Receiver], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver condition not met in {timeout}s; got {self.event_ids()}")
            time.sleep(0.01)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        raw_body = handler.rfile.read(length)
        if len(raw_body) < length:
            return  # the sender died mid-request (a killed worker): nothing arrived, nothing to answer
        request = Request(
            event_id=handler.headers.get("X-Event-ID", ""),
            body=json.loads(raw_body or b"{}"),
            raw_body=raw_body,
            headers={k.lower(): v for k, v in handler.headers.items()},
            arrived=time.monotonic(),
        )
        with self._lock:
            self.requests.append(request)
            status, delay, gate = self.status, self.delay, self._gate
        gate.wait(timeout=30)
        time.sleep(delay)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(b'{"ok": true}' if status < 300 else b'{"error": "nope"}')
        if 200 <= status < 300:
            with self._lock:
                self.accepted.append(request.event_id)

    def start(self) -> Receiver:
        self._serve(0)
        return self

    def _serve(self, port: int) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                # The worker may have gone away mid-request (killed): nothing to answer then.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # hung requests must not hold up the teardown
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.release()
        if self._server is not None and self._server.socket.fileno() != -1:
            self._server.shutdown()
            self._server.server_close()
