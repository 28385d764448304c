"""The figures of one load-test run, as written by the locustfile (``raw.json``) and read by the gate.

Latencies are kept as histograms (bucket in ms -> count), as Locust keeps them, so runs can be
merged and compared after the fact. Percentiles use Locust's nearest-rank rule.

The SLIs are counted separately and exactly (:class:`SliCounts`): per endpoint, the requests
answered 5xx, not answered at all (refused, reset, timed out), answered 4xx or 429 (neither is an
SLO error), and how many answered requests took at most each SLO latency threshold, compared on
the raw response time, so the gate counts "over 250 ms" the way Prometheus's ``le="0.25"``
bucket does, never from a rounded histogram or a percentile.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.shapes import Plan

Histogram = dict[float, int]


def bucket_ms(response_time: float) -> float:
    """Round a latency to 3 significant digits (Locust's default keeps 2: 1 ms steps below 100 ms).

    With 2 digits a 2 -> 3 ms p95 is a +50 % "regression"; 3 digits resolve 0.01 ms below 10 ms.
    """
    if response_time <= 0:
        return 0.0
    digits = 3 - math.floor(math.log10(response_time)) - 1
    return float(round(response_time, digits))


def percentile(hist: Mapping[float, int], fraction: float) -> float | None:
    """Nearest-rank percentile of a histogram (as Locust computes it); ``None`` when empty."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(total * fraction))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return max(hist)  # pragma: no cover - unreachable: seen reaches total


def merge(histograms: Iterable[Mapping[float, int]]) -> Histogram:
    merged: Histogram = {}
    for hist in histograms:
        for value, count in hist.items():
            merged[value] = merged.get(value, 0) + count
    return merged


def _histogram(raw: Mapping[str, int] | Mapping[float, int]) -> Histogram:
    return {float(k): int(v) for k, v in raw.items()}


@dataclass
class SliCounts:
    """What the SLIs count for one endpoint over the measured window.

    ``within_ms[b]``: answered requests (not 5xx, not a transport error) whose response time was
    at most ``b`` ms. ``within_corrected_ms[b]``: the same with the task's schedule lag added,
    i.e. timed from when the request was due rather than when it was sent (coordinated
    omission correction: a user that fell behind its schedule waited that long too).
    """

    requests: int = 0
    server_errors: int = 0  # 5xx
    transport_errors: int = 0  # no HTTP answer: refused, reset, timed out
    client_errors: int = 0  # 4xx other than 429: not SLO errors
    throttled: int = 0  # 429: not an SLO error either
    within_ms: dict[float, int] = field(default_factory=dict)
    within_corrected_ms: dict[float, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """SLO errors: 5xx and requests that got no answer."""
        return self.server_errors + self.transport_errors

    @property
    def answered(self) -> int:
        """Requests the latency SLI counts (as the alert rules: everything but 5xx)."""
        return self.requests - self.errors

    def over(self, bound_ms: float, corrected: bool = True) -> int | None:
        """Answered requests slower than ``bound_ms``; ``None`` when the run did not count that bound."""
        within = (self.within_corrected_ms if corrected else self.within_ms).get(float(bound_ms))
        return None if within is None else self.answered - within

    def record(self, status: int, response_time_ms: float, lag_ms: float, bounds: Iterable[float]) -> None:
        """Count one request (``status`` 0 = no HTTP answer, as Locust's FastHttpUser reports it)."""
        self.requests += 1
        if status == 0:
            self.transport_errors += 1
            return
        if status >= 500:
            self.server_errors += 1
            return
        if status == 429:
            self.throttled += 1
        elif status >= 400:
            self.client_errors += 1
        for bound in bounds:
            if response_time_ms <= bound:
                self.within_ms[bound] = self.within_ms.get(bound, 0) + 1
            else:
                self.within_ms.setdefault(bound, 0)
            if response_time_ms + lag_ms <= bound:
                self.within_corrected_ms[bound] = self.within_corrected_ms.get(bound, 0) + 1
            else:
                self.within_corrected_ms.setdefault(bound, 0)

    def __add__(self, other: SliCounts) -> SliCounts:
        return SliCounts(
            self.requests + other.requests,
            self.server_errors + other.server_errors,
            self.transport_errors + other.transport_errors,
            self.client_errors + other.client_errors,
            self.throttled + other.throttled,
            merge([self.within_ms, other.within_ms]),
            merge([self.within_corrected_ms, other.within_corrected_ms]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "server_errors": self.server_errors,
            "transport_errors": self.transport_errors,
            "client_errors": self.client_errors,
            "throttled": self.throttled,
            "within_ms": {str(k): v for k, v in self.within_ms.items()},
            "within_corrected_ms": {str(k): v for k, v in self.within_corrected_ms.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SliCounts:
        return cls(
            int(data["requests"]),
            int(data["server_errors"]),
            int(data["transport_errors"]),
            int(data["client_errors"]),
            int(data["throttled"]),
            _histogram(data["within_ms"]),
            _histogram(data["within_corrected_ms"]),
        )


@dataclass(frozen=True)
class EndpointStats:
    method: str
    name: str
    num_requests: int
    num_failures: int
    response_times: Histogram
    sli: SliCounts | None = None  # None: the run predates SLI counting (or came from elsewhere)

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"

    @property
    def error_ratio(self) -> float:
        return self.num_failures / self.num_requests if self.num_requests else 0.0

    def percentile(self, fraction: float) -> float | None:
        return percentile(self.response_times, fraction)


@dataclass(frozen=True)
class TimelinePoint:
    """One second of the run: users, and per endpoint the requests, failures and p50/p95."""

    t: float
    users: int
    warmup: bool
    total_hist: Histogram
    endpoints: dict[str, dict[str, float]]


@dataclass(frozen=True)
class RunStats:
    host: str
    plan: Plan
    measured_seconds: float
    cpu_warning: bool
    endpoints: list[EndpointStats]
    errors: list[dict[str, Any]] = field(default_factory=list)
    tasks_planned: float = 0.0
    tasks_executed: int = 0
    timeline: list[TimelinePoint] = field(default_factory=list)
    locust_version: str = ""
    schedule_lag_ms: Histogram = field(default_factory=dict)  # per journey task: how late it started
    foreign_cpu_cores: float | None = None  # other processes' CPU during the run (set by the runner)

    @property
    def total_requests(self) -> int:
        return sum(e.num_requests for e in self.endpoints)

    @property
    def total_failures(self) -> int:
        return sum(e.num_failures for e in self.endpoints)

    def rps(self, count: int) -> float:
        return count / self.measured_seconds if self.measured_seconds > 0 else 0.0

    def endpoint(self, key: str) -> EndpointStats | None:
        return next((e for e in self.endpoints if e.key == key), None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunStats:
        return cls(
            host=data["host"],
            plan=Plan.from_json(data["plan"]),
            measured_seconds=float(data["measured_seconds"]),
            cpu_warning=bool(data["cpu_warning"]),
            endpoints=[
                EndpointStats(
                    e["method"],
                    e["name"],
                    int(e["num_requests"]),
                    int(e["num_failures"]),
                    _histogram(e["response_times"]),
                    SliCounts.from_json(e["sli"]) if e.get("sli") is not None else None,
                )
                for e in data["endpoints"]
            ],
            errors=list(data.get("errors", [])),
            tasks_planned=float(data.get("tasks", {}).get("planned", 0.0)),
            tasks_executed=int(data.get("tasks", {}).get("executed", 0)),
            timeline=[
                TimelinePoint(
                    float(p["t"]),
                    int(p["users"]),
                    bool(p["warmup"]),
                    _histogram(p["total_hist"]),
                    p["endpoints"],
                )
                for p in data.get("timeline", [])
            ],
            locust_version=data.get("locust_version", ""),
            schedule_lag_ms=_histogram(data.get("schedule_lag_ms", {})),
        )

    @classmethod
    def load(cls, path: Path) -> RunStats:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ValueError(f"{path}: no run statistics (did Locust start and finish?)") from None
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: malformed run statistics ({exc})") from None
