"""The server's own bounds on a real socket (security review M5, L1, I2): `python -m app.main`."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.tests.system.service_process import ServiceProcess, service_process

MAX_HEAD = 8192
RECEIPT_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log_dir = tmp_path_factory.mktemp("bounds")
    database = f"sqlite+aiosqlite:///{log_dir / 'bounds.db'}"
    from app.migrate import upgrade
    from service.tests.builders import make_settings

    upgrade(make_settings(database))
    with service_process(
        database,
        Path(log_dir),
        HTTP_MAX_HEAD_BYTES=str(MAX_HEAD),
        HTTP_REQUEST_TIMEOUT_SECONDS=str(RECEIPT_TIMEOUT),
    ) as running:
        yield running


def _connect(server: ServiceProcess) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    return conn


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_an_oversized_header_gets_431_and_the_connection_closes(server: ServiceProcess) -> None:
    with _connect(server) as conn:
        conn.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\nX-Big: ")
        try:
            for _ in range(64):  # 4 MiB, far past the bound: the server stops reading at 8 KiB
                conn.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _read_all(conn)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"statusCode":431' in answer and b"connection: close" in answer.lower()


def test_an_oversized_url_gets_431(server: ServiceProcess) -> None:
    with _connect(server) as conn:
        conn.sendall(b"GET /health/live?" + b"q" * (4 * MAX_HEAD) + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = _read_all(conn)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_head_within_the_bound_is_served(server: ServiceProcess) -> None:
    response = httpx.get(f"{server.base_url}/health/live", headers={"X-Pad": "p" * (MAX_HEAD // 2)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "opening",
    [
        pytest.param(b"", id="silent-connection"),
        pytest.param(b"GET /health/live HTTP/1.1\r\nHost: t\r\nX-Slow: ", id="trickled-headers"),
    ],
)
def test_a_request_not_received_in_time_gets_408(server: ServiceProcess, opening: bytes) -> None:
    with _connect(server) as conn:
        started = time.monotonic()
        if opening:
            conn.sendall(opening)
        # A header byte every quarter second must keep nothing alive: trickle until the server
        # answers (or long past the deadline). Check for the answer before each byte: a byte
        # sent after the server closed draws a reset that discards the unread 408.
        give_up = started + RECEIPT_TIMEOUT + 6
        while time.monotonic() < give_up:
            readable, _, _ = select.select([conn], [], [], 0.25)
            if readable:
                break
            if not opening:
                continue
            try:
                conn.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = _read_all(conn)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert RECEIPT_TIMEOUT * 0.9 <= waited < RECEIPT_TIMEOUT + 5


def test_a_trickled_body_is_cut_off(server: ServiceProcess) -> None:
    with _connect(server) as conn:
        conn.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        started = time.monotonic()
        for _ in range(int(RECEIPT_TIMEOUT * 8)):
            time.sleep(0.25)
            try:
                conn.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                break
        _read_all(conn)  # whatever was sent, the server closed the connection
        assert time.monotonic() - started < RECEIPT_TIMEOUT + 5


def test_other_clients_are_served_while_a_slow_one_waits(server: ServiceProcess) -> None:
    with _connect(server) as slow:
        slow.sendall(b"GET /health/live HTTP/1.1\r\nHost: t\r\n")
        response = httpx.get(f"{server.base_url}/health/live")
        assert response.status_code == 200


def test_no_server_header_and_keep_alive_requests_still_work(server: ServiceProcess) -> None:
    with httpx.Client(base_url=server.base_url) as http:
        for _ in range(3):
            response = http.get("/health/live")
            assert response.status_code == 200
            assert "server" not in response.headers
