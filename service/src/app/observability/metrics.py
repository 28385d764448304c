"""Prometheus metrics of the API process (RED per route template, plus saturation).

One uvicorn worker per container (Kubernetes scales pods), so the default
in-process registry is exact: no multiprocess mode, no summing across workers.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Buckets resolve the SLO thresholds (25 ms ... 2.5 s; latency SLO at 250 ms).
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
)
UNMATCHED_ROUTE = "unmatched"


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration by route template and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being served (route is unknown before routing).",
            ["method"],
            registry=registry,
        )


_by_registry: dict[int, HttpMetrics] = {}


def metrics_for(registry: CollectorRegistry) -> HttpMetrics:
    """One HttpMetrics per registry: app factories may run many times in one process (tests)."""
    if id(registry) not in _by_registry:
        _by_registry[id(registry)] = HttpMetrics(registry)
    return _by_registry[id(registry)]
