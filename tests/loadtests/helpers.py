"""Synthetic run statistics for the gate and comparison tests (no Locust involved)."""

from __future__ import annotations

from typing import Any

from loadtests import shapes
from loadtests.runstats import EndpointStats, RunStats, SliCounts, TimelinePoint
from loadtests.targets import EnvironmentTargets, parse

LIST = ("GET", shapes.PROJECTS)
CREATE = ("POST", shapes.PROJECTS)
LIVE = ("GET", "/health/live")
BOUNDS = (100.0, 250.0)  # the thresholds of the test targets' classes


def endpoint(
    method_route: tuple[str, str],
    latencies: dict[float, int],
    failures: int = 0,
    *,
    client_errors: int = 0,
    throttled: int = 0,
    transport_errors: int = 0,
    record_sli: bool = True,
) -> EndpointStats:
    """An endpoint whose requests took ``latencies`` (ms -> count).

    ``failures`` of them answered 5xx (the slowest ones), ``transport_errors`` got no answer;
    4xx and 429 are answered requests. Threshold counts are exact on the given latencies.
    """
    method, route = method_route
    total = sum(latencies.values())
    errors = failures + transport_errors
    answered = sorted(v for v, n in latencies.items() for _ in range(n))[: total - errors]
    within = {b: sum(v <= b for v in answered) for b in BOUNDS}
    counts = SliCounts(total, failures, transport_errors, client_errors, throttled, within, dict(within))
    return EndpointStats(
        method,
        route,
        total,
        errors + client_errors + throttled,
        dict(latencies),
        counts if record_sli else None,
    )


def run_stats(
    *endpoints: EndpointStats,
    seconds: float = 10.0,
    cpu_warning: bool = False,
    planned: float = 100.0,
    executed: int = 100,
    plan: shapes.Plan | None = None,
    timeline: list[TimelinePoint] | None = None,
    schedule_lag_ms: dict[float, int] | None = None,
    foreign_cpu_cores: float | None = None,
) -> RunStats:
    return RunStats(
        host="http://127.0.0.1:1",
        plan=plan or shapes.fixed(50, seconds, 2),
        measured_seconds=seconds,
        cpu_warning=cpu_warning,
        endpoints=list(endpoints),
        tasks_planned=planned,
        tasks_executed=executed,
        timeline=timeline or [],
        schedule_lag_ms=schedule_lag_ms or {},
        foreign_cpu_cores=foreign_cpu_cores,
    )


def targets_document(
    p95_ms: float = 100.0,
    availability: float = 0.99,
    latency: float = 0.99,
    min_rps: float | None = 5.0,
    total_rps: float | None = None,
) -> dict[str, Any]:
    """A targets document as kit/slo.py writes it: read and write in the SLO, health not."""
    return {
        "schema_version": 1,
        "source": "test",
        "alerting_environment": "ci",
        "page_burn_rates": [14.4, 6.0],
        "routes": {
            f"GET {shapes.PROJECTS}": "read",
            f"POST {shapes.PROJECTS}": "write",
            "GET /health/live": "health",
        },
        "environments": {
            "ci": {
                "availability_objective": availability,
                "latency_objective": latency,
                "min_throughput_rps": total_rps,
                "classes": {
                    "read": {
                        "endpoints": [{"method": "GET", "route": shapes.PROJECTS}],
                        "in_slo": True,
                        "latency_threshold_ms": 250,
                        "p95_ms": p95_ms,
                        "p99_ms": p95_ms * 2,
                        "max_error_ratio": round(1 - availability, 6),
                        "min_throughput_rps": min_rps,
                    },
                    "write": {
                        "endpoints": [{"method": "POST", "route": shapes.PROJECTS}],
                        "in_slo": True,
                        "latency_threshold_ms": 250,
                        "p95_ms": p95_ms * 2,
                        "p99_ms": None,
                        "max_error_ratio": round(1 - availability, 6),
                        "min_throughput_rps": None,
                    },
                    "health": {
                        "endpoints": [{"method": "GET", "route": "/health/live"}],
                        "in_slo": False,
                        "latency_threshold_ms": 100,
                        "p95_ms": 25,
                        "p99_ms": None,
                        "max_error_ratio": round(1 - availability, 6),
                        "min_throughput_rps": None,
                    },
                },
            }
        },
    }


def targets(**kwargs: Any) -> EnvironmentTargets:
    return parse(targets_document(**kwargs), "ci")
