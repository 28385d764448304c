"""python -m app.probe: status and body of the container's own endpoints, 503 bodies included."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from app import probe
from testsupport.servers import free_port


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        answers = {
            "/health/ready": (503, b'{"status":"unavailable","checks":{"db":"error: TimeoutError"}}'),
            "/health/live": (200, b'{"status":"ok"}'),
            "/metrics": (200, b"# HELP outbox_x x\noutbox_x 3.0\nhttp_y 1.0\n"),
        }
        status, body = answers[self.path]
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_503_prints_its_body_and_fails(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main(["ready", "--port", str(port)]) == 1
    assert capsys.readouterr().out == '503 {"status":"unavailable","checks":{"db":"error: TimeoutError"}}\n'


def test_live_succeeds(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main(["live", "--port", str(port)]) == 0
    assert capsys.readouterr().out == '200 {"status":"ok"}\n'


def test_metrics_grep_keeps_matching_lines(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main(["metrics", "--port", str(port), "--grep", "outbox_"]) == 0
    assert capsys.readouterr().out == "200 # HELP outbox_x x\noutbox_x 3.0\n"


def test_no_answer_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main(["live", "--port", str(free_port()), "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("probe: http://127.0.0.1:") and "no answer" in err and err.count("\n") == 1
