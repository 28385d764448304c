"""Faults under load: the stack each scenario runs, its profile (short in `make test`, long in
`make chaos`), the accounting of writes and events, and the one-line figures per scenario.
(tests/chaos/conftest.py holds the fixtures and prints the table.)

Every scenario runs real processes on loopback: the API (`python -m app.main`, uvicorn), the
outbox worker, PostgreSQL and Redis from testsupport's harness, and a webhook receiver
(testsupport.webhook_receiver) that de-duplicates by event id. The figures of every scenario
are printed at the end of the run as one table (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from app.api.errors import DATABASE_FAILURE_RESPONSES
from app.migrate import upgrade
from app.outbox.tables import outbox_events
from app.projects.infrastructure.tables import projects
from app.settings import Settings
from kit import slo
from loadtests import sli
from testsupport.load import Balancer, LoadResult, Outcome, SteadyLoad, api_users
from testsupport.processes import ApiProcess, WorkerProcess, new_api, new_worker, running
from testsupport.webhook_receiver import Receiver


@dataclass(frozen=True)
class Profile:
    name: str
    rate: float  # requests per second of the steady load
    users: int
    before_seconds: float  # load before the fault
    fault_seconds: float  # how long the fault lasts
    after_seconds: float  # load after the fault is healed


PROFILES = {
    # make test: every scenario in a few seconds of load.
    "short": Profile("short", rate=40, users=3, before_seconds=1.0, fault_seconds=2.0, after_seconds=1.5),
    # make chaos: long enough for backoffs, leases and breakers to cycle several times.
    "full": Profile("full", rate=80, users=8, before_seconds=5.0, fault_seconds=15.0, after_seconds=10.0),
}


def profile_from_environment() -> Profile:
    name = os.environ.get("CHAOS_PROFILE", "short")
    if name not in PROFILES:
        raise ValueError(f"CHAOS_PROFILE must be one of {', '.join(PROFILES)}, got {name!r}")
    return PROFILES[name]


# Worker timings for a scenario that lasts seconds: a 1 s webhook timeout, a 3 s lease, a
# breaker that opens after 3 transient failures and tries again after 1 s.
WORKER_SETTINGS = {
    "OUTBOX_POLL_INTERVAL_SECONDS": "0.1",
    "OUTBOX_BATCH_SIZE": "20",
    "OUTBOX_MAX_ATTEMPTS": "8",
    "OUTBOX_BACKOFF_BASE_SECONDS": "0.1",
    "OUTBOX_BACKOFF_MAX_SECONDS": "1",
    "OUTBOX_LEASE_SECONDS": "3",
    "WEBHOOK_TIMEOUT_SECONDS": "1",
    "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "3",
    "CIRCUIT_BREAKER_RESET_SECONDS": "1",
    "IDEMPOTENCY_SWEEP_INTERVAL_SECONDS": "0",
}
SHUTDOWN_DELAY_SECONDS = 2.0  # the API's drain delay: unready but serving while balancers catch up
# Production-like edge: shared limits in Redis, but read and write budgets no load user reaches
# (the scenarios are about the store, not the budget); login keeps its default 5/minute.
SHARED_API_SETTINGS = {
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_READ": "100000/minute",
    "RATE_LIMIT_WRITE": "100000/minute",
    "RATE_LIMIT_REDIS_RETRY_SECONDS": "1",
    "SHUTDOWN_DELAY_SECONDS": str(SHUTDOWN_DELAY_SECONDS),
    "DRAIN_TIMEOUT_SECONDS": "10",
}
API_SETTINGS = {"RATE_LIMIT_ENABLED": "false", "SHUTDOWN_DELAY_SECONDS": "0", "LOG_LEVEL": "INFO"}


@dataclass
class Stack:
    apis: list[ApiProcess]
    worker: WorkerProcess
    receiver: Receiver
    database_url: str
    log_dir: Path
    tokens: list[str] = field(default_factory=list)  # bearer tokens of the load's users

    @property
    def api(self) -> ApiProcess:
        return self.apis[0]

    def healthy(self) -> bool:
        return all(process.running() for process in [*self.apis, self.worker])


@contextlib.contextmanager
def chaos_stack(
    database_url: str,
    log_dir: Path,
    *,
    apis: int = 1,
    api: dict[str, str] | None = None,
    worker: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """`apis` API processes + a worker on `database_url` (migrated), delivering to a fresh receiver."""
    receiver = Receiver().start()
    shared = {"DATABASE_URL": database_url, "WEBHOOK_URL": receiver.url}
    api_procs = [new_api(log_dir, **shared, **{**API_SETTINGS, **(api or {})}) for _ in range(apis)]
    worker_proc = new_worker(log_dir, **shared, **{**WORKER_SETTINGS, **(worker or {})})
    try:
        with running(*api_procs, worker_proc):
            yield Stack(api_procs, worker_proc, receiver, database_url, log_dir)
    finally:
        receiver.stop()


@contextlib.asynccontextmanager
async def migrated_stack(database_url: str, log_dir: Path, users: int) -> AsyncIterator[Stack]:
    """A scenario's own stack: `database_url` migrated, one API and a worker on it (see
    ``chaos_stack``), and ``users`` API users whose tokens are in ``stack.tokens``."""
    await asyncio.to_thread(upgrade, Settings(database_url=database_url))
    with chaos_stack(database_url, log_dir) as stack:
        stack.tokens = await api_users(stack.api.base_url, users)
        yield stack


# --- load --------------------------------------------------------------------------------------

MAX_LOAD_SECONDS = 300  # a bound on every scenario's load, whatever happens to the scenario


@dataclass
class RunningLoad:
    load: SteadyLoad
    task: asyncio.Task[LoadResult]
    stop: asyncio.Event

    async def finish(self, after_seconds: float) -> LoadResult:
        """Keep the load on for `after_seconds` more (recovery is measured under load), then stop it."""
        await asyncio.sleep(after_seconds)
        self.stop.set()
        return await self.task


def start_load(balancer: Balancer, tokens: list[str], profile: Profile) -> RunningLoad:
    """The profile's steady load, running until `finish` (at most MAX_LOAD_SECONDS)."""
    load = SteadyLoad(balancer, tokens, profile.rate, MAX_LOAD_SECONDS)
    stop = asyncio.Event()
    return RunningLoad(load, asyncio.create_task(load.run(stop)), stop)


# --- accounting --------------------------------------------------------------------------------


async def stored_project_ids(database_url: str) -> set[str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return {str(row.id) for row in await conn.execute(select(projects.c.id))}
    finally:
        await engine.dispose()


async def outbox_status(database_url: str, event_ids: set[str]) -> dict[str, tuple[str, int]]:
    """event id -> (status, attempts) of those outbox events."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(outbox_events.c.id, outbox_events.c.status, outbox_events.c.attempts)
            )
            return {str(row.id): (row.status, row.attempts) for row in rows if str(row.id) in event_ids}
    finally:
        await engine.dispose()


async def outbox_by_project(database_url: str) -> dict[str, tuple[str, str]]:
    """project id -> (event id, status) of its project.created event."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(outbox_events.c.id, outbox_events.c.status, outbox_events.c.payload)
            )
            return {str(row.payload["data"]["projectId"]): (str(row.id), row.status) for row in rows}
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class EventAccount:
    lost: list[str]  # acknowledged projects whose event was neither delivered nor dead-lettered
    duplicated: int  # 2xx deliveries beyond the first, per event id
    dead_lettered: int
    delivered: int


async def settle_events(
    receiver: Receiver, database_url: str, acknowledged: list[str], timeout: float = 30
) -> EventAccount:
    """Wait until the event of every acknowledged write reached the receiver or the dead letters."""
    deadline = time.monotonic() + timeout
    while True:
        events = await outbox_by_project(database_url)
        accepted = set(receiver.accepted)
        missing = [
            project
            for project in acknowledged
            if project not in events or (events[project][0] not in accepted and events[project][1] != "dead")
        ]
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    own = {events[p][0] for p in acknowledged if p in events}
    bodies = {event: copies for event, copies in receiver.accepted_bodies().items() if event in own}
    for event_id, copies in bodies.items():
        # A redelivery is the same event: a receiver de-duplicating by id loses nothing.
        assert len({json.dumps(json.loads(body), sort_keys=True) for body in copies}) == 1, event_id
    return EventAccount(
        lost=missing,
        duplicated=sum(len(copies) - 1 for copies in bodies.values()),
        dead_lettered=sum(1 for p in acknowledged if p in events and events[p][1] == "dead"),
        delivered=len(own & set(bodies)),
    )


# --- latency SLO (alerts/slo.yaml via kit/slo.py: one source of truth) --------------------------

SLO_ENVIRONMENT = "ci"  # the loopback stack on a shared runner, as the load-test gate judges it
_SPEC = slo.load()
# A fault breaks the latency SLO when the share over the threshold is above the allowance with
# this confidence (one-sided Clopper-Pearson, as the load gate judges a breach).
BREACH_CONFIDENCE = 0.99
# The load's request kinds by SLO class.
LOAD_CLASSES = {"read": ("list", "get"), "write": ("create",)}


@dataclass(frozen=True)
class LatencyVerdict:
    """The latency SLI (share of non-5xx answers slower than the class threshold) per class, during
    the fault and before it. The fault may cost at most the latency budget (1 - objective) on top of
    what the same machine showed before it: on a quiet machine that is the SLO itself, and a shared
    CI runner's background load does not turn into a false alarm."""

    during: dict[str, float]
    before: dict[str, float]
    budget: float
    # Answers judged per class during the fault: with a few dozen writes one slow request is
    # 2 %, so a breach needs the load gate's evidence (loadtests/sli.py), not a bare share, and
    # a class is judged only from the gate's minimum sample (as the gate does: below it, "not
    # judged", said in the report). The short profile of `make test` has a few dozen answers per
    # class under a busy suite; `make chaos` (full profile, run alone) has enough to judge.
    answered: dict[str, int]

    @property
    def minimum(self) -> int:
        policy = sli.SliPolicy()
        return sli.minimum_samples(self.budget, policy.detect_burn, BREACH_CONFIDENCE, policy.power)

    @property
    def within(self) -> bool:
        return not any(
            total >= self.minimum
            and sli.lower_bound(round(self.during[name] * total), total, BREACH_CONFIDENCE)
            > self.before[name] + self.budget
            for name, total in self.answered.items()
        )

    def describe(self) -> str:
        parts = [
            f"{name} {self.during[name]:.1%} over {_SPEC.endpoint_classes[name].latency_threshold_ms} ms "
            f"({self.before[name]:.1%} before)"
            for name in self.during
        ]
        unjudged = [name for name, total in self.answered.items() if total < self.minimum]
        if unjudged:
            parts.append(f"not judged: {', '.join(unjudged)} (< {self.minimum} answers)")
        busy = any(share > self.budget for share in self.before.values())
        # A baseline already outside the SLO means a machine too busy for an absolute verdict.
        return ", ".join(parts) + f", budget {self.budget:.0%}" + (" (busy machine)" if busy else "")


def _answered(outcomes: list[Outcome]) -> dict[str, int]:
    window = LoadResult(outcomes)
    return {name: len(window.answered(kinds)) for name, kinds in LOAD_CLASSES.items()}


def _shares(outcomes: list[Outcome]) -> dict[str, float]:
    window = LoadResult(outcomes)
    return {
        name: window.share_slower_than(_SPEC.endpoint_classes[name].latency_threshold_seconds, kinds)
        for name, kinds in LOAD_CLASSES.items()
    }


def latency_verdict(result: LoadResult, fault_from: float, fault_until: float) -> LatencyVerdict:
    """Requests started before `fault_from` are the baseline; those started in the fault window are judged."""
    during = [o for o in result.outcomes if fault_from <= o.started < fault_until]
    return LatencyVerdict(
        during=_shares(during),
        before=_shares([o for o in result.outcomes if o.started < fault_from]),
        budget=_SPEC.objectives(SLO_ENVIRONMENT).latency_error_budget,
        answered=_answered(during),
    )


# The only texts a 5xx may carry: the service's own messages, nothing from a driver or a stack.
ALLOWED_5XX_MESSAGES = {
    "Internal server error",
    *(message for _, message in DATABASE_FAILURE_RESPONSES.values()),
}
INTERNAL_MARKERS = ("Traceback", "asyncpg", "sqlalchemy", "sqlite", "postgres", "redis", 'File "')


def leaky_5xx(outcomes: list[Outcome]) -> list[str]:
    """5xx bodies that are not the standard error body with a generic message."""
    leaks = []
    for outcome in outcomes:
        if outcome.status is None or outcome.status < 500:
            continue
        text = outcome.body.decode(errors="replace")
        try:
            body: Any = json.loads(text)
        except ValueError:
            leaks.append(text[:200])
            continue
        if (
            not isinstance(body, dict)
            or body.get("message") not in ALLOWED_5XX_MESSAGES
            or body.get("details")
            or any(marker.lower() in text.lower() for marker in INTERNAL_MARKERS)
        ):
            leaks.append(text[:200])
    return leaks


# --- figures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    scenario: str
    sent: int
    failed: int
    writes_lost: int
    events_lost: int
    events_duplicated: int
    detect_seconds: float | None
    recover_seconds: float | None
    note: str = ""

    def line(self) -> str:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f} s"

        return (
            f"[chaos] {self.scenario}: sent {self.sent}, failed {self.failed}, "
            f"acknowledged writes lost {self.writes_lost}, events lost {self.events_lost}, "
            f"duplicated {self.events_duplicated}, detect {seconds(self.detect_seconds)}, "
            f"recover {seconds(self.recover_seconds)}" + (f"; {self.note}" if self.note else "")
        )

    def row(self) -> str:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        return (
            f"| {self.scenario} | {self.sent} | {self.failed} | {self.writes_lost} | {self.events_lost} / "
            f"{self.events_duplicated} | {seconds(self.detect_seconds)} | {seconds(self.recover_seconds)} | "
            f"{self.note} |"
        )


FIGURES: list[Figures] = []


def report(figures: Figures) -> None:
    """Keep the scenario's figures for the table at the end of the run (tests/chaos/conftest.py)."""
    FIGURES.append(figures)


def summary_lines() -> list[str]:
    """Every scenario's line, then the same figures as a Markdown table (for docs/reliability.md)."""
    if not FIGURES:
        return []
    lines = [figures.line() for figures in FIGURES]
    lines += [
        "",
        "| scenario | requests sent | failed | acknowledged writes lost | events lost / duplicated "
        "| detect (s) | recover (s) | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return lines + [figures.row() for figures in FIGURES]
