"""Synthetic run statistics for the gate and comparison tests (no Locust involved)."""

from __future__ import annotations

from loadtests import shapes
from loadtests.runstats import EndpointStats, RunStats, TimelinePoint
from loadtests.targets import ClassTarget, EnvironmentTargets

LIST = ("GET", shapes.PROJECTS)
CREATE = ("POST", shapes.PROJECTS)


def endpoint(method_route: tuple[str, str], latencies: dict[float, int], failures: int = 0) -> EndpointStats:
    method, route = method_route
    return EndpointStats(method, route, sum(latencies.values()), failures, dict(latencies))


def run_stats(
    *endpoints: EndpointStats,
    seconds: float = 10.0,
    cpu_warning: bool = False,
    planned: float = 100.0,
    executed: int = 100,
    plan: shapes.Plan | None = None,
    timeline: list[TimelinePoint] | None = None,
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
    )


def targets(
    p95_ms: float = 100.0,
    max_error_ratio: float = 0.01,
    min_rps: float | None = 5.0,
    total_rps: float | None = None,
) -> EnvironmentTargets:
    read = ClassTarget(
        p95_ms=p95_ms, p99_ms=p95_ms * 2, max_error_ratio=max_error_ratio, min_throughput_rps=min_rps
    )
    write = ClassTarget(
        p95_ms=p95_ms * 2, p99_ms=None, max_error_ratio=max_error_ratio, min_throughput_rps=None
    )
    routes = {f"GET {shapes.PROJECTS}": "read", f"POST {shapes.PROJECTS}": "write"}
    return EnvironmentTargets("ci", {"read": read, "write": write}, routes, "test", total_rps)
