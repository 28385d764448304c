"""An idle keep-alive connection outlives the idle timeout of the pools in front of the service.

uvicorn closes idle connections after 5 s by default. A gateway or client pool that keeps them
longer (Envoy's upstream default is an hour) reuses a connection just as the server closes it,
and that request is lost: the chaos suite saw "Server disconnected without sending a response"
under steady load. KEEP_ALIVE_TIMEOUT_SECONDS (75 s by default) keeps the server the last to close.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from app.settings import Settings
from service.tests.system.service_process import service_process

REQUEST = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
UVICORN_DEFAULT_SECONDS = 5


def exchange(conn: socket.socket) -> bytes:
    """One request and its whole response (head and Content-Length body), or what came before EOF."""
    conn.sendall(REQUEST)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = conn.recv(65536)
        if not chunk:
            return received
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length and (chunk := conn.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_idle_connection_outlives_uvicorns_default(sqlite_url: str, tmp_path: Path) -> None:
    assert Settings().keep_alive_timeout_seconds > 60  # above the 60 s idle timeouts of common balancers
    with service_process(sqlite_url, tmp_path) as server:
        url = urlsplit(server.base_url)
        with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
            assert exchange(conn).startswith(b"HTTP/1.1 200")
            time.sleep(UVICORN_DEFAULT_SECONDS + 0.5)
            assert exchange(conn).startswith(b"HTTP/1.1 200"), "the server closed an idle connection"


def test_the_timeout_is_the_setting(sqlite_url: str, tmp_path: Path) -> None:
    with service_process(sqlite_url, tmp_path, KEEP_ALIVE_TIMEOUT_SECONDS="1") as server:
        url = urlsplit(server.base_url)
        with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
            assert exchange(conn).startswith(b"HTTP/1.1 200")
            time.sleep(2)
            assert conn.recv(1) == b"", "an idle connection outlived KEEP_ALIVE_TIMEOUT_SECONDS"
