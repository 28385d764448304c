"""`kit status` against the Kubernetes API stand-in, scenario by scenario, with the real client."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.cli.conftest import Result, RunningService, StandIn


def _status(kit: Callable[..., Result], standin: StandIn, env: str, *extra: str) -> tuple[Result, dict]:
    result = kit("status", "--env", env, "--json", *standin.args(), *extra)
    return result, json.loads(result.out)


def test_healthy_staging_is_healthy_with_every_figure(
    kit: Callable[..., Result], standin: Callable[..., StandIn], running_service: RunningService
) -> None:
    api = standin("staging", "healthy", service_backend=running_service.base_url)
    result, report = _status(kit, api, "staging")
    assert result.code == 0, result.err
    assert report["verdict"] == "healthy"
    assert report["namespace"] == "reference-service-staging"
    workloads = {w["name"]: w for w in report["workloads"]}
    assert workloads["reference-service-api"] | {"image": None} == {
        "name": "reference-service-api",
        "desired": 2,  # the HPA's minimum in config/environments.yaml
        "ready": 2,
        "updated": 2,
        "available": 2,
        "rollout": "complete",
        "revision": "3",
        "image": None,
    }
    assert workloads["reference-service-api"]["image"] == "ghcr.io/example/reference-service:0.1.0"
    assert report["autoscaler"] == {
        "name": "reference-service-api",
        "current": 2,
        "desired": 2,
        "min": 2,
        "max": 6,
    }
    assert {p["name"]: p["allowed"] for p in report["disruption_budgets"]} == {
        "reference-service-api": 1,
        "reference-service-worker": 1,
    }
    assert len(report["pods"]) == 3 and all(p["ready"] and p["restarts"] == 0 for p in report["pods"])
    # Readiness went through the API server's Service proxy to the real service.
    assert report["health"]["status"] == 200
    assert report["health"]["body"]["checks"]["db"] == "ok"
    assert (
        "GET",
        "/api/v1/namespaces/reference-service-staging/services/reference-service:http/proxy/health/ready",
    ) in api.cluster.requests


def test_human_output_is_tables_and_a_verdict(
    kit: Callable[..., Result], standin: Callable[..., StandIn], running_service: RunningService
) -> None:
    api = standin("prod", "healthy", service_backend=running_service.base_url)
    result = kit("status", "--env", "prod", *api.args())
    assert result.code == 0, result.err
    assert "reference-service-prod (prod, context standin)" in result.out
    assert "HPA reference-service-api: 3 current, 3 desired (min 3, max 12)" in result.out
    assert result.out.rstrip().endswith("verdict: healthy")


def test_rolling_out_is_degraded_not_unhealthy(
    kit: Callable[..., Result], standin: Callable[..., StandIn], running_service: RunningService
) -> None:
    api = standin("prod", "rolling_out", service_backend=running_service.base_url)
    result, report = _status(kit, api, "prod")
    assert result.code == 0
    assert report["verdict"] == "degraded"
    api_workload = next(w for w in report["workloads"] if w["name"] == "reference-service-api")
    assert (api_workload["rollout"], api_workload["updated"], api_workload["available"]) == (
        "rolling out",
        1,
        3,
    )
    assert {"level": "degraded", "message": "reference-service-api: rollout in progress"} in report[
        "findings"
    ]
    assert sum(1 for p in report["pods"] if not p["ready"]) == 1


def test_crash_looping_worker_is_unhealthy_with_the_reason(
    kit: Callable[..., Result], standin: Callable[..., StandIn], running_service: RunningService
) -> None:
    api = standin("dev", "crash_looping", service_backend=running_service.base_url)
    result, report = _status(kit, api, "dev")
    assert result.code == 1
    assert report["verdict"] == "unhealthy"
    worker_pod = next(p for p in report["pods"] if p["component"] == "worker")
    assert worker_pod["restarts"] == 7
    assert worker_pod["reasons"] == ["worker: CrashLoopBackOff", "worker last exit: Error (code 2)"]
    messages = [f["message"] for f in report["findings"] if f["level"] == "unhealthy"]
    assert "reference-service-worker: 0 of 1 replicas available (no worker delivers events)" in messages
    assert any(m.startswith(f"pod {worker_pod['name']}: worker CrashLoopBackOff") for m in messages)


def test_hpa_at_max_is_degraded(
    kit: Callable[..., Result], standin: Callable[..., StandIn], running_service: RunningService
) -> None:
    api = standin("prod", "hpa_at_max", service_backend=running_service.base_url)
    result, report = _status(kit, api, "prod")
    assert result.code == 0
    assert report["autoscaler"]["current"] == report["autoscaler"]["max"] == 12
    assert report["verdict"] == "degraded"
    assert any("at its maximum (12 replicas)" in f["message"] for f in report["findings"])


def test_readiness_503_names_the_failing_check(
    kit: Callable[..., Result], standin: Callable[..., StandIn], tmp_path: object
) -> None:
    """A pod that answers 503 (the database down): the body says which check failed."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotReady(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"status":"unavailable","checks":{"db":"error: OSError"}}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotReady)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = standin("staging", "healthy", service_backend=f"http://127.0.0.1:{server.server_address[1]}")
        result, report = _status(kit, api, "staging")
    finally:
        server.shutdown()
        server.server_close()
    assert result.code == 1
    assert report["health"]["status"] == 503
    assert "readiness answered 503: {'db': 'error: OSError'}" in [f["message"] for f in report["findings"]]


def test_no_route_to_the_pods_is_reported_not_fatal(
    kit: Callable[..., Result], standin: Callable[..., StandIn]
) -> None:
    api = standin("staging", "healthy")  # the proxy has no endpoint: 503 from the API server itself
    result, report = _status(kit, api, "staging")
    assert result.code == 0
    assert report["verdict"] == "healthy"  # pod readiness is the evidence then; the note says why
    note = "health endpoint not reachable through the API server (503); see pod readiness"
    assert {"level": "info", "message": note} in report["findings"]


def test_url_checks_readiness_at_another_base(
    kit: Callable[..., Result], standin: Callable[..., StandIn], running_service: RunningService
) -> None:
    api = standin("staging", "healthy")  # no route through the API server this time
    result, report = _status(kit, api, "staging", "--url", running_service.base_url)
    assert result.code == 0
    assert report["health"]["source"] == f"{running_service.base_url}/health/ready"
    assert report["health"]["status"] == 200
    assert not [path for _, path in api.cluster.requests if "/proxy/" in path]


def test_stalled_rollout_is_unhealthy(
    kit: Callable[..., Result], standin: Callable[..., StandIn], running_service: RunningService
) -> None:
    api = standin("prod", "rolling_out", service_backend=running_service.base_url)
    deployment = api.cluster.objects[("Deployment", "reference-service-api")]
    deployment["status"]["conditions"][1] = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "reference-service-api-x" has timed out progressing.',
    }
    result, report = _status(kit, api, "prod")
    assert result.code == 1
    assert (
        next(w for w in report["workloads"] if w["name"] == deployment["metadata"]["name"])["rollout"]
        == "stalled"
    )
    assert {
        "level": "unhealthy",
        "message": "reference-service-api: rollout stalled (progress deadline exceeded)",
    } in (report["findings"])
