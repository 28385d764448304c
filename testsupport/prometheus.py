"""A real Prometheus scraping the service on loopback, as the kit's rules expect it in a cluster.

Shared by the end-to-end alerting test (tests/alerts/test_e2e_prometheus.py) and the dashboard
previews (kit.dashboard_previews): the scrape configuration (file-based discovery per service
job, so a test can move a job to new targets as Kubernetes does when pods are replaced; static
jobs for exporters), and the HTTP API calls both make.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from testsupport.servers import PrometheusServer

if TYPE_CHECKING:
    from kit.slo import Selectors

SCRAPE_INTERVAL_SECONDS = 1
RULES_FILE = "rules.yaml"


class PrometheusQueryError(RuntimeError):
    """Prometheus refused a query (bad PromQL, unknown function): its error, one line."""


def prometheus_config(
    discovered_jobs: list[str], static_jobs: dict[str, tuple[str, str]] | None = None
) -> str:
    """Every second: scrape each discovered job from ``<job>.json`` (see ``point_job_at``) and each
    static job ``{job: (host:port, metrics path)}``; evaluate the rules of ``RULES_FILE``."""

    def file_sd(job: str) -> dict[str, Any]:
        return {"job_name": job, "file_sd_configs": [{"files": [f"{job}.json"], "refresh_interval": "1s"}]}

    def static(job: str, target: str, path: str) -> dict[str, Any]:
        # honor_labels keeps the exposition's namespace, as with kube-state-metrics in a cluster.
        return {
            "job_name": job,
            "honor_labels": True,
            "metrics_path": path,
            "static_configs": [{"targets": [target]}],
        }

    interval = f"{SCRAPE_INTERVAL_SECONDS}s"
    return yaml.safe_dump(
        {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "rule_files": [RULES_FILE],
            "scrape_configs": [file_sd(job) for job in discovered_jobs]
            + [static(job, target, path) for job, (target, path) in (static_jobs or {}).items()],
        }
    )


def point_job_at(prometheus: PrometheusServer, job: str, addresses: list[str], namespace: str) -> None:
    """What Kubernetes service discovery does when pods come and go: the job's targets become
    ``addresses`` (host:port), labelled with ``namespace``."""
    targets = [{"targets": addresses, "labels": {"namespace": namespace}}]
    path = prometheus.config_file.parent / f"{job}.json"
    path.with_suffix(".tmp").write_text(json.dumps(targets))
    path.with_suffix(".tmp").rename(path)  # atomic: Prometheus never reads half a file


def query(prometheus: PrometheusServer, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector; a rejected query raises with Prometheus' error."""
    return _api(prometheus, "query", {"query": expr})


def query_range(
    prometheus: PrometheusServer, expr: str, start: float, end: float, step: float
) -> list[dict[str, Any]]:
    """A range query's result matrix (``[{"metric": {...}, "values": [[t, "v"], ...]}]``)."""
    return _api(prometheus, "query_range", {"query": expr, "start": start, "end": end, "step": step})


def _api(prometheus: PrometheusServer, endpoint: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus.url}/api/v1/{endpoint}", params=params, timeout=10)
    if response.status_code != 200:
        raise PrometheusQueryError(f"{params['query']}: {response.status_code} {response.text[:500]}")
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def service_prometheus_config(selectors: Selectors, cluster: str) -> str:
    """The service's jobs (API, worker: see ``point_job_at``) and, from ``cluster_exporter`` at
    ``cluster``, what kube-state-metrics, cert-manager, cAdvisor and the Pushgateway would expose."""
    return prometheus_config(
        [selectors.api_job, selectors.worker_job],
        {
            selectors.kube_state_metrics_job: (cluster, "/kube-state-metrics"),
            selectors.cert_manager_job: (cluster, "/cert-manager"),
            selectors.cadvisor_job: (cluster, "/cadvisor"),
            selectors.synthetic_job: (cluster, "/pushgateway"),
        },
    )


def cluster_exposition(selectors: Selectors, namespace: str) -> dict[str, str]:
    """Path -> exposition of the series a cluster would add for the service in ``namespace``.

    Placeholders ({now}, {expiry}, {cpu}, ...) are filled at each scrape by ``cluster_exporter``.
    The SLO objectives are recorded per namespace from ``kube_deployment_spec_replicas``, so
    the rules need the kube-state-metrics part even when no panel shows it.
    """
    pod = f'namespace="{namespace}",pod="{selectors.api_deployment}-0"'
    cpu = f'{pod},container="api",resource="cpu",unit="core"'
    hpa = f'namespace="{namespace}",horizontalpodautoscaler="{selectors.hpa_name}"'
    deployment = f'namespace="{namespace}",deployment="{selectors.api_deployment}"'
    container = f'{pod},container="api"'
    probe = f'job="{selectors.synthetic_job}",namespace="{namespace}"'
    return {
        "/kube-state-metrics": "\n".join(
            [
                f'kube_pod_status_ready{{{pod},condition="true"}} 1',
                f'kube_pod_status_ready{{{pod},condition="false"}} 0',
                f'kube_pod_container_status_restarts_total{{{pod},container="api"}} 0',
                f'kube_pod_container_resource_limits{{{pod},container="api",resource="memory",unit="byte"}} '
                "268435456",
                f"kube_pod_container_resource_limits{{{cpu}}} 1",
                f"kube_pod_container_resource_requests{{{cpu}}} 0.5",
                f"kube_deployment_spec_replicas{{{deployment}}} 2",
                f"kube_deployment_status_replicas_available{{{deployment}}} 2",
                f"kube_deployment_status_observed_generation{{{deployment}}} 3",
                f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}} 2",
                f"kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}} 2",
                f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}} 4",
                "",
            ]
        ),
        "/cert-manager": (
            f'certmanager_certificate_expiration_timestamp_seconds{{namespace="{namespace}",'
            f'name="{selectors.certificate_name.format(environment="prod")}"}} {{expiry}}\n'
        ),
        "/cadvisor": "\n".join(
            [
                f"container_cpu_usage_seconds_total{{{container}}} {{cpu}}",
                f"container_cpu_cfs_periods_total{{{container}}} {{periods}}",
                f"container_cpu_cfs_throttled_periods_total{{{container}}} {{throttled}}",
                "",
            ]
        ),
        # What the `kit smoke` CronJob pushes to the Pushgateway (honor_labels keeps job and namespace).
        "/pushgateway": "\n".join(
            [
                f"synthetic_journey_success{{{probe}}} 1",
                f'synthetic_step_success{{{probe},step="login"}} 1',
                f"synthetic_journey_duration_seconds{{{probe}}} 0.3",
                f"synthetic_journey_last_run_timestamp_seconds{{{probe}}} {{now}}",
                "",
            ]
        ),
    }


@contextlib.contextmanager
def cluster_exporter(selectors: Selectors, namespace: str) -> Iterator[str]:
    """Serve ``cluster_exposition`` on a free loopback port; yields its host:port."""
    exposition = cluster_exposition(selectors, namespace)

    def render(path: str) -> str | None:
        body = exposition.get(path)
        if body is None:
            return None
        now = time.time()
        values = {
            "{expiry}": str(int(now) + 60 * 86400),
            "{now}": str(int(now)),
            # Counters that grow with time, as a container's CPU accounting does.
            "{cpu}": f"{now * 0.1:.3f}",
            "{periods}": str(int(now * 10)),
            "{throttled}": str(int(now)),
        }
        for placeholder, value in values.items():
            body = body.replace(placeholder, value)
        return body

    with serve_exposition(render) as address:
        yield address


@contextlib.contextmanager
def serve_exposition(render: Callable[[str], str | None]) -> Iterator[str]:
    """Serve ``render(path)`` as a Prometheus text exposition on a free loopback port (404 where
    it gives None), rendered at each scrape; yields its host:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = render(self.path)
            if body is None:
                self.send_error(404)
                return
            payload = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
