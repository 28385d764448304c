"""Load shapes as plain data: how many virtual users, when, and which part of the run is measured.

The Locust ``LoadTestShape`` in ``locustfile.py`` only delegates to :class:`Plan.tick`, so the
shapes are unit-tested here without importing Locust (which monkey-patches the interpreter).

Load model: every journey user runs one task per ``PACING_SECONDS`` on a fixed schedule with a
random phase (staggered, so users do not fire in lockstep) and catches up when it falls behind.
The offered task rate is therefore ``users / PACING_SECONDS`` whatever the latency, which keeps the
closed-loop Locust close to an open model below saturation; when the server cannot keep up, users
fall behind their schedule and the gate sees it as "achieved < offered".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

ShapeKind = Literal["fixed", "step", "smoke"]
SHAPES: tuple[ShapeKind, ...] = ("fixed", "step", "smoke")

# One task per user every PACING_SECONDS: small enough that a few dozen users cover a hundred
# requests per second, large enough that a 50 ms response never makes a user fall behind.
PACING_SECONDS = 0.5

# Route templates, exactly as the service labels them (http_requests_total{route=...}).
API = "/api/v1"
PROJECTS = f"{API}/projects"
PROJECT = f"{API}/projects/{{project_id}}"
LOGIN, LOGOUT, REGISTER = f"{API}/auth/login", f"{API}/auth/logout", f"{API}/auth/register"
ME = f"{API}/users/me"

# The journey mix. A list task walks LIST_PAGES pages through the cursor; "relogin" is a session
# that expired: log out, log in, fetch the profile (so login is measured after the warm-up too).
LIST_PAGES = 3
TASK_REQUESTS: dict[str, dict[str, int]] = {
    "list": {f"GET {PROJECTS}": LIST_PAGES},
    "get": {f"GET {PROJECT}": 1},
    "create": {f"POST {PROJECTS}": 1},
    "update": {f"PATCH {PROJECT}": 1},
    "delete": {f"DELETE {PROJECT}": 1},
    "relogin": {f"POST {LOGOUT}": 1, f"POST {LOGIN}": 1, f"GET {ME}": 1},
    "signup": {f"POST {REGISTER}": 1},
}
# "signup" is a visitor creating an account, so register is measured, not only in the warm-up.
MEMBER_TASKS: dict[str, int] = {"list": 40, "get": 30, "create": 10, "update": 12, "relogin": 8, "signup": 2}
MANAGER_TASKS: dict[str, int] = {"list": 20, "get": 10, "create": 30, "delete": 40}
# Locust spreads users over classes by weight: one manager per ten journey users.
MEMBER_WEIGHT, MANAGER_WEIGHT = 9, 1
# Background scrapers: each hits /health/live and /health/ready every second, /metrics every 5 s.
SCRAPE_ROUTES: dict[str, float] = {"GET /health/live": 1.0, "GET /health/ready": 1.0, "GET /metrics": 0.2}
BACKGROUND_USERS = 2


def route_rates(task_rate: float, background_users: int = BACKGROUND_USERS) -> dict[str, float]:
    """Expected requests per second per ``"METHOD /route"`` at ``task_rate`` journey tasks/s."""
    rates: dict[str, float] = {}
    total_weight = MEMBER_WEIGHT + MANAGER_WEIGHT
    for user_weight, tasks in ((MEMBER_WEIGHT, MEMBER_TASKS), (MANAGER_WEIGHT, MANAGER_TASKS)):
        share = user_weight / total_weight
        for task, weight in tasks.items():
            for route, count in TASK_REQUESTS[task].items():
                rate = task_rate * share * weight / sum(tasks.values()) * count
                rates[route] = rates.get(route, 0.0) + rate
    for route, per_user in SCRAPE_ROUTES.items():
        rates[route] = rates.get(route, 0.0) + per_user * background_users
    return rates


def expected_requests_per_task() -> float:
    """Mean API requests one journey task makes, over the member/manager mix."""
    return sum(route_rates(1.0, background_users=0).values())


def users_for_rate(rate_rps: float) -> int:
    """Journey users needed to offer about ``rate_rps`` API requests per second."""
    task_rate = rate_rps / expected_requests_per_task()
    return max(1, math.ceil(task_rate * PACING_SECONDS))


@dataclass(frozen=True)
class Step:
    """One stage of a plan: ``users`` journey users from ``start`` (s) for ``duration`` (s)."""

    start: float
    duration: float
    users: int
    rate_rps: float

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class Plan:
    """A load shape: warm-up (excluded from the figures), then measured steps, then stop.

    ``background_users`` (health and metrics scrapers) run on top of the journey users.
    ``latency_bounds_ms`` are the SLO classes' latency thresholds: the locustfile counts, per
    endpoint, the requests at or under each bound from the exact response time (Locust's own
    histogram rounds, so it cannot say which side of 250 ms a 250.4 ms request fell).
    """

    kind: ShapeKind
    warmup_seconds: float
    steps: tuple[Step, ...]
    background_users: int = BACKGROUND_USERS
    latency_bounds_ms: tuple[float, ...] = ()

    @property
    def duration(self) -> float:
        return self.steps[-1].end if self.steps else self.warmup_seconds

    @property
    def measured_seconds(self) -> float:
        return self.duration - self.warmup_seconds

    @property
    def peak_users(self) -> int:
        return max(s.users for s in self.steps)

    def step_at(self, t: float) -> Step | None:
        for step in self.steps:
            if step.start <= t < step.end:
                return step
        return None

    def tick(self, t: float) -> tuple[int, float] | None:
        """Locust's ``(user_count, spawn_rate)`` at run time ``t``; ``None`` stops the run.

        Users spawn within about a second; each starts at a random phase of its pacing interval,
        so requests spread evenly instead of arriving in bursts.
        """
        if t < self.warmup_seconds:
            step = self.steps[0]
            users = step.users
        else:
            current = self.step_at(t)
            if current is None:
                return None
            users = current.users
        spawn_rate = float(max(users, 1))
        return users + self.background_users, spawn_rate

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [asdict(s) for s in self.steps]
        data["latency_bounds_ms"] = list(self.latency_bounds_ms)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            kind=data["kind"],
            warmup_seconds=float(data["warmup_seconds"]),
            steps=tuple(Step(**s) for s in data["steps"]),
            background_users=int(data.get("background_users", BACKGROUND_USERS)),
            latency_bounds_ms=tuple(float(b) for b in data.get("latency_bounds_ms", ())),
        )


def fixed(rate_rps: float, measure_seconds: float, warmup_seconds: float = 10.0) -> Plan:
    """Constant offered rate below saturation: the gate's shape."""
    _positive(rate_rps=rate_rps, measure_seconds=measure_seconds)
    _not_negative(warmup_seconds=warmup_seconds)
    users = users_for_rate(rate_rps)
    step = Step(start=warmup_seconds, duration=measure_seconds, users=users, rate_rps=rate_rps)
    return Plan("fixed", warmup_seconds, (step,))


def step(
    start_rps: float, step_rps: float, steps: int, step_seconds: float, warmup_seconds: float = 10.0
) -> Plan:
    """Rate rising by ``step_rps`` every ``step_seconds``: finds the capacity knee."""
    _positive(start_rps=start_rps, step_rps=step_rps, steps=steps, step_seconds=step_seconds)
    _not_negative(warmup_seconds=warmup_seconds)
    stages = []
    for i in range(steps):
        rate = start_rps + i * step_rps
        stages.append(Step(warmup_seconds + i * step_seconds, step_seconds, users_for_rate(rate), rate))
    return Plan("step", warmup_seconds, tuple(stages))


def smoke(measure_seconds: float = 10.0, rate_rps: float = 20.0) -> Plan:
    """A few users for a few seconds: does every journey work at all."""
    users = users_for_rate(rate_rps)
    return Plan("smoke", 2.0, (Step(2.0, measure_seconds, users, rate_rps),))


def _positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _not_negative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
