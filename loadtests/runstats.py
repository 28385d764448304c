"""The figures of one load-test run, as written by the locustfile (``raw.json``) and read by the gate.

Latencies are kept as histograms (bucket in ms -> count), as Locust keeps them, so runs can be
merged and compared after the fact. Percentiles use Locust's nearest-rank rule.
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


@dataclass(frozen=True)
class EndpointStats:
    method: str
    name: str
    num_requests: int
    num_failures: int
    response_times: Histogram

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
        )

    @classmethod
    def load(cls, path: Path) -> RunStats:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ValueError(f"{path}: no run statistics (did Locust start and finish?)") from None
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: malformed run statistics ({exc})") from None
