"""Readiness on a real server: it follows the database (503 soon after it goes, 200 when it is
back) and ignores Redis, which the service degrades around.

The figures (seconds from the dependency's stop to the first 503, and from its
restart to the first 200) are printed; `pytest -s` shows them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.migrate import upgrade
from service.tests.builders import make_settings
from service.tests.system.service_process import ServiceProcess, service_process
from testsupport.servers import PostgresServer, postgres_server, redis_server

POLL_SECONDS = 0.1
# The budget is "about 2 s": a 1 s probe timeout at worst, the poll interval, a loaded CI host.
FLIP_BUDGET_SECONDS = 3.0


@dataclass
class Probe:
    """Polls readiness and liveness every 100 ms, like a kubelet with a very short period."""

    server: ServiceProcess
    ready: list[tuple[float, int, str]] = field(default_factory=list)
    live: list[int] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.server.base_url, timeout=5) as http:
            while not self.stopped.is_set():
                response = http.get("/health/ready")
                self.ready.append((time.monotonic(), response.status_code, response.text))
                self.live.append(http.get("/health/live").status_code)
                time.sleep(POLL_SECONDS)

    def first(self, status: int, after: float, timeout: float = 30) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, seen, body in list(self.ready):
                if at >= after and seen == status:
                    return at, body
            time.sleep(0.02)
        raise AssertionError(f"readiness never answered {status}: {self.ready[-3:]}")


@contextlib.contextmanager
def probing(server: ServiceProcess) -> Iterator[Probe]:
    probe = Probe(server)
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        probe.stopped.set()
        thread.join(timeout=10)


def flip_and_recover(
    server: ServiceProcess, stop: Callable[[], None], start: Callable[[], None], check: str
) -> tuple[float, float]:
    """Stop a dependency, time readiness to 503, start it again, time readiness back to 200."""
    with probing(server) as probe:
        probe.first(200, after=0)
        stop()
        stopped_at = time.monotonic()
        down_at, body = probe.first(503, after=stopped_at)
        assert f'"{check}":"error' in body.replace(" ", ""), body
        start()
        started_at = time.monotonic()
        up_at, _ = probe.first(200, after=started_at)
        time.sleep(3 * POLL_SECONDS)
    assert probe.live and set(probe.live) == {200}, "liveness must not follow dependencies"
    return down_at - stopped_at, up_at - started_at


def stop_fast(server: PostgresServer) -> None:
    """PostgreSQL's fast shutdown (SIGINT): ends client sessions, as losing the database does.

    (SIGTERM's smart shutdown would wait for the app's pooled connections to go away.)
    """
    server.process.send_signal(signal.SIGINT)
    server.process.wait(timeout=30)


def test_readiness_follows_the_database_without_a_restart(tmp_path: Path) -> None:
    with postgres_server() as postgres:
        postgres.psql('CREATE DATABASE "app"')
        url = postgres.url("app")
        upgrade(make_settings(url))
        with service_process(url, tmp_path) as server:
            down, up = flip_and_recover(server, lambda: stop_fast(postgres), postgres.start_again, check="db")
            assert server.process.poll() is None, "the service must survive the outage"
            assert httpx.get(f"{server.base_url}/api/v1/projects").status_code == 401  # serving again
    print(f"\nreadiness on database loss: 503 after {down:.2f} s, 200 again {up:.2f} s after restart")
    assert down <= FLIP_BUDGET_SECONDS
    assert up <= FLIP_BUDGET_SECONDS


def test_redis_down_leaves_the_api_ready_and_serving(sqlite_url: str, tmp_path: Path) -> None:
    """K2: Redis is not in readiness; without it the rate limiter counts per process."""
    with (
        redis_server() as redis,
        service_process(sqlite_url, tmp_path, REDIS_URL=redis.url, RATE_LIMIT_ENABLED="true") as server,
        probing(server) as probe,
        httpx.Client(base_url=server.base_url, timeout=5) as http,
    ):
        assert http.get("/health/ready").json() == {"status": "ok", "checks": {"db": "ok"}}
        redis.stop()
        stopped_at = time.monotonic()
        account = {"email": "k2@example.com", "password": "correct horse battery", "name": "K2"}
        assert http.post("/api/v1/auth/register", json=account).status_code == 201
        credentials = {"email": account["email"], "password": account["password"]}
        logins = [http.post("/api/v1/auth/login", json=credentials) for _ in range(6)]
        token = logins[0].json()["accessToken"]
        listed = http.get("/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
        time.sleep(2)  # let the probe see several polls with Redis gone
        metrics = http.get("/metrics").text
        seen_since_stop = [status for at, status, _ in probe.ready if at >= stopped_at]
        assert server.process.poll() is None
    assert listed.status_code == 200, listed.text
    # The login limit (5/minute) stays in force per process: the sixth is refused.
    assert [r.status_code for r in logins] == [200] * 5 + [429]
    assert len(seen_since_stop) >= 10 and set(seen_since_stop) == {200}, seen_since_stop
    assert set(probe.live) == {200}
    errors = [line for line in metrics.splitlines() if line.startswith("rate_limit_storage_errors_total")]
    assert errors and float(errors[0].split()[-1]) >= 1, "the limiter must have tried Redis and degraded"
