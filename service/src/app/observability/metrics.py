"""Prometheus metrics of the API process: RED per route template, saturation, build info.

Process model: one uvicorn worker per container (Kubernetes scales pods, the HPA
counts pods), so one in-process registry per app (`app_registry`) is exact and complete. No
multiprocess mode: it would drop custom collectors (the DB pool gauges), process_*
metrics and Info/Enum types. Running `--workers N` would make each scrape see one
worker's counters only; the entry point (`python -m app.main`) therefore has no
workers option.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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
# Event-loop lag and pool waits: 1 ms resolves a healthy loop, 5 s a badly blocked one.
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED_ROUTE = "unmatched"
# The method label is bounded too: anything else a client sends counts as "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


class DbPoolCollector(Collector):
    """Reads the engine's pool at scrape time (no bookkeeping on the request path).

    The engine, not the pool, is kept: `dispose()` swaps the pool. Pools without the
    QueuePool API (SQLite's StaticPool for in-memory databases) report nothing rather
    than a made-up figure.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [self._in_use(), self._max()]

    def _in_use(self) -> GaugeMetricFamily:
        return GaugeMetricFamily("db_pool_connections_in_use", "Database connections checked out now.")

    def _max(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "db_pool_connections_max", "Most database connections the pool may open (size + overflow)."
        )

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pool: Any = getattr(self.engine, "pool", None)
        checkedout = getattr(pool, "checkedout", None)
        if checkedout is None:
            return []
        in_use, maximum = self._in_use(), self._max()
        in_use.add_metric([], float(checkedout()))
        overflow = getattr(pool, "_max_overflow", 0)
        if overflow >= 0:  # -1 means unbounded: no maximum to report
            maximum.add_metric([], float(pool.size() + overflow))
            return [in_use, maximum]
        return [in_use]


def app_registry() -> CollectorRegistry:
    """A registry for one app: its own metrics plus the process's (CPU, memory, GC, Python).

    One per app rather than prometheus_client's global one, so building an app twice in one
    process (tests, tools) needs no memo of what was registered before.
    """
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry, engine: Any) -> None:
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
        self.build_info = Gauge(
            "service_build_info",
            "Always 1; labels name the running version and environment.",
            ["version", "environment"],
            registry=registry,
        )
        self.db_pool_wait = Histogram(
            "db_pool_checkout_wait_seconds",
            "Time a unit of work waited for a database connection (permit and pool checkout).",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.event_loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late the event loop ran a timer: time every request on this process waits too.",
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.db_pool = DbPoolCollector(engine)
        registry.register(self.db_pool)
        # (method, route, status) -> (counter child, histogram child): labels() takes a lock
        # and builds a tuple on every call; the set of keys is bounded by the label rules.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # method -> requests being served. Plain ints on the event loop (the only place requests
        # start and end); the gauge reads them at scrape time, so a request pays no lock for it.
        self.active: dict[str, int] = {}

    def track_in_progress(self, method: str) -> None:
        """Start counting `method`'s requests in progress (once per method label)."""
        if method not in self.active:
            self.active[method] = 0
            self.in_progress.labels(method).set_function(lambda: self.active[method])

    def observe(self, method: str, route: str, status: int, duration: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.duration.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(duration)
