"""`kit smoke` against the real service (uvicorn, PostgreSQL, Redis), pushing to a real Pushgateway."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from kit.cli import errors
from tests.cli.conftest import SMOKE_PASSWORD, Result, RunningService
from tests.cli.servers import pushgateway
from testsupport.servers import PostgresServer, free_port

STEPS = ["health", "login", "create", "read", "list", "delete", "metrics"]


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with pushgateway() as url:
        yield url


def _pushed(gateway: str, namespace: str) -> dict[str, float]:
    """The samples the Pushgateway holds for the probe's group, by series (labels sorted)."""
    text = httpx.get(f"{gateway}/metrics").text
    samples = {}
    for line in text.splitlines():
        if line.startswith("synthetic_") and f'namespace="{namespace}"' in line:
            series, value = line.rsplit(" ", 1)
            samples[series] = float(value)
    return samples


def _smoke(kit: Callable[..., Result], service: RunningService, *extra: str) -> Result:
    return kit(*service.smoke_argv(*extra))


def test_journey_passes_and_pushes_the_contract_metrics(
    kit: Callable[..., Result], running_service: RunningService, gateway: str, postgres: PostgresServer
) -> None:
    result = kit(*running_service.pushed_journey_argv(gateway, "kit-smoke-ok", "staging"))
    assert result.code == 0, result.out + result.err
    report = json.loads(result.out)
    assert report["ok"] is True
    assert [s["name"] for s in report["steps"]] == STEPS
    assert all(s["ok"] and s["detail"] == "" for s in report["steps"])
    pushed = _pushed(gateway, "kit-smoke-ok")
    group = 'environment="staging",instance="",job="reference-service-synthetic",namespace="kit-smoke-ok"'
    assert pushed[f"synthetic_journey_success{{{group}}}"] == 1
    assert pushed[f"synthetic_journey_duration_seconds{{{group}}}"] == pytest.approx(report["seconds"])
    assert pushed[f"synthetic_journey_last_run_timestamp_seconds{{{group}}}"] > 1.7e9
    for step in STEPS:
        assert pushed[f'synthetic_step_success{{{group},step="{step}"}}'] == 1
    # The journey cleaned up after itself.
    left = postgres.psql(
        "SELECT count(*) FROM projects WHERE name LIKE 'kit-smoke-%'", running_service.database
    )
    assert left.strip() == "0"


def test_failed_login_fails_the_journey_and_pushes_zero(
    kit: Callable[..., Result], running_service: RunningService, gateway: str
) -> None:
    result = _smoke(
        kit, running_service, "--password", "wrong", "--pushgateway", gateway, "--namespace", "kit-smoke-bad"
    )
    assert result.code == errors.FAILED
    assert "journey: FAILED" in result.out
    assert "expected 200" in result.out  # the login step's detail: the answer the service gave
    pushed = _pushed(gateway, "kit-smoke-bad")
    assert [v for k, v in pushed.items() if k.startswith("synthetic_journey_success")] == [0]
    assert [
        v for k, v in pushed.items() if 'step="login"' in k and k.startswith("synthetic_step_success")
    ] == [0]
    assert not any('step="create"' in k for k in pushed)  # steps after the failure never ran


def test_credentials_come_from_the_environment(
    kit: Callable[..., Result], running_service: RunningService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_SMOKE_EMAIL", running_service.smoke_email)
    monkeypatch.setenv("KIT_SMOKE_PASSWORD", SMOKE_PASSWORD)
    result = kit("smoke", "--url", running_service.base_url, "--json")
    assert result.code == 0, result.err
    monkeypatch.delenv("KIT_SMOKE_PASSWORD")
    result = kit("smoke", "--url", running_service.base_url)
    assert result.code == errors.USAGE
    assert result.err.strip() == (
        "error: the journey needs the smoke account: --email/--password or KIT_SMOKE_EMAIL/KIT_SMOKE_PASSWORD"
    )


def test_unreachable_service(kit: Callable[..., Result]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = kit("smoke", "--url", url, "--email", "a@example.com", "--password", "x", "--json")
    assert result.code == errors.UNREACHABLE
    assert result.err.startswith(f"error: service unreachable at {url}: ConnectError")


def test_unreachable_pushgateway_is_reported_after_a_good_journey(
    kit: Callable[..., Result], running_service: RunningService
) -> None:
    gateway = f"http://127.0.0.1:{free_port()}"
    result = _smoke(kit, running_service, "--password", SMOKE_PASSWORD, "--pushgateway", gateway, "--json")
    assert json.loads(result.out)["ok"] is True
    assert result.code == errors.UNREACHABLE
    assert result.err.startswith(f"error: Pushgateway {gateway} unreachable")


def test_through_an_edge_that_routes_only_api_health_and_metrics_are_not_counted(
    kit: Callable[..., Result], running_service: RunningService
) -> None:
    """Like the Ingress/HTTPRoute: /api/* is proxied, everything else is the edge's 404."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Edge(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            if not self.path.startswith("/api/"):
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
            answer = httpx.request(
                self.command,
                running_service.base_url + self.path,
                headers=headers,
                content=self.rfile.read(length) if length else None,
            )
            self.send_response(answer.status_code)
            for key in ("content-type", "location"):
                if key in answer.headers:
                    self.send_header(key, answer.headers[key])
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    edge = ThreadingHTTPServer(("127.0.0.1", 0), Edge)
    threading.Thread(target=edge.serve_forever, daemon=True).start()
    try:
        result = kit(
            "smoke",
            "--url",
            f"http://127.0.0.1:{edge.server_address[1]}",
            "--email",
            running_service.smoke_email,
            "--password",
            SMOKE_PASSWORD,
            "--json",
        )
    finally:
        edge.shutdown()
        edge.server_close()
    assert result.code == 0, result.out
    steps = {s["name"]: s for s in json.loads(result.out)["steps"]}
    assert (steps["health"]["status"], steps["health"]["detail"]) == (404, "not routed")
    assert (steps["metrics"]["status"], steps["metrics"]["detail"]) == (404, "not routed")
    assert all(steps[name]["ok"] and steps[name]["detail"] == "" for name in STEPS[1:-1])
