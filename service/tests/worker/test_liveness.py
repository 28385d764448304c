"""The worker's /health/live judges the relay loop's heartbeat, served over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from app.outbox.liveness import Heartbeat, start_server
from testsupport.servers import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def served() -> Iterator[tuple[str, Clock, Heartbeat]]:
    clock = Clock()
    heartbeat = Heartbeat(stale_after_seconds=60, clock=clock)
    registry = CollectorRegistry()
    Counter("probe_things", "A metric to find in the exposition.", registry=registry).inc()
    port = free_port()
    server = start_server("127.0.0.1", port, registry, heartbeat)
    try:
        yield f"http://127.0.0.1:{port}", clock, heartbeat
    finally:
        server.shutdown()
        server.server_close()


def test_alive_while_the_loop_beats_then_503_once_it_stalls(served: tuple[str, Clock, Heartbeat]) -> None:
    base, clock, heartbeat = served
    assert get(f"{base}/health/live") == (200, b'{"status":"ok","loopAgeSeconds":0.0}')
    clock.now += 60  # exactly the limit: still alive
    assert get(f"{base}/health/live")[0] == 200
    clock.now += 1
    status, body = get(f"{base}/health/live")
    assert status == 503
    assert json.loads(body) == {"status": "stalled", "loopAgeSeconds": 61.0}
    heartbeat.beat()  # the loop turns again
    assert get(f"{base}/health/live")[0] == 200


def test_the_same_port_still_serves_the_metrics(served: tuple[str, Clock, Heartbeat]) -> None:
    base, clock, _ = served
    clock.now += 3600  # a stalled loop does not hide the metrics that explain it
    status, body = get(f"{base}/metrics")
    assert status == 200
    assert b"probe_things_total 1.0" in body
