# Locust's event hooks and shape base class are untyped.
# mypy: disable-error-code="no-untyped-call,untyped-decorator"
"""User journeys against the reference service, for Locust (``locust -f loadtests/locustfile.py``).

Configured through environment variables (the runner ``python -m loadtests`` sets them):

* ``LOADTEST_PLAN``: JSON of a :class:`loadtests.shapes.Plan` (default: a smoke plan);
* ``LOADTEST_RAW``: where to write the run's figures for the gate (``raw.json``);
* ``LOADTEST_OWNERS`` / ``LOADTEST_MANAGERS``: how many seeded accounts to log in as;
* ``LOADTEST_PASSWORD``: the seeded accounts' password.

Requests are named by route template so Locust groups them per endpoint, as the service's
``http_requests_total{route=...}`` does. Works unchanged in Locust's distributed mode: the
figures are gathered on the master (workers report their task counts with their stats).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import gevent
import locust.stats
from locust import FastHttpUser, LoadTestShape, constant_pacing, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

# Locust is started as ``locust -f loadtests/locustfile.py``: make the repo root importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadtests import accounts, shapes
from loadtests.runstats import SliCounts, bucket_ms, merge, percentile

# 3 significant digits instead of Locust's 2, so sub-10 ms endpoints are not rounded to whole ms.
locust.stats.bucket_response_time = bucket_ms  # type: ignore[assignment] # float buckets work

PLAN = (
    shapes.Plan.from_json(json.loads(os.environ["LOADTEST_PLAN"]))
    if "LOADTEST_PLAN" in os.environ
    else shapes.smoke()
)
OWNERS = int(os.environ.get("LOADTEST_OWNERS", "100"))
MANAGERS = int(os.environ.get("LOADTEST_MANAGERS", "10"))
NEWCOMER_EVERY = 20  # one journey user in 20 registers a fresh account instead of logging in

API, PROJECTS, PROJECT = shapes.API, shapes.PROJECTS, shapes.PROJECT
PAGE_SIZE = 20


class Clock:
    """Run time of this process, and the journey tasks it ran inside the measured window."""

    started: float | None = None
    tasks_executed = 0

    @classmethod
    def elapsed(cls) -> float:
        return time.monotonic() - cls.started if cls.started is not None else 0.0

    @classmethod
    def count_task(cls) -> None:
        if PLAN.warmup_seconds <= cls.elapsed() < PLAN.duration:
            cls.tasks_executed += 1


class Sli:
    """Exact SLI counts per endpoint and the journey tasks' schedule lag, in the measured window.

    The only process with users (or each worker in distributed mode) counts; the master sums the
    workers' reports. Locally, counting starts when Locust's statistics are reset at the end of
    the warm-up, so the SLIs and Locust's table cover the same requests.
    """

    counts: dict[str, SliCounts] = {}
    schedule_lag_ms: dict[float, int] = {}
    on_worker = False
    started = False

    @classmethod
    def measuring(cls) -> bool:
        return Clock.elapsed() >= PLAN.warmup_seconds if cls.on_worker else cls.started

    @classmethod
    def start(cls) -> None:
        cls.counts, cls.schedule_lag_ms, cls.started = {}, {}, True

    @classmethod
    def record(cls, key: str, status: int, response_time_ms: float, lag_ms: float) -> None:
        if cls.measuring():
            counts = cls.counts.setdefault(key, SliCounts())
            counts.record(status, response_time_ms, lag_ms, PLAN.latency_bounds_ms)

    @classmethod
    def record_lag(cls, lag_ms: float) -> None:
        if cls.measuring():
            bucket = bucket_ms(lag_ms)
            cls.schedule_lag_ms[bucket] = cls.schedule_lag_ms.get(bucket, 0) + 1


_sequence = iter(range(1_000_000_000))


class JourneyUser(FastHttpUser):
    """Logs in once, then runs one weighted task per pacing interval on a fixed schedule."""

    abstract = True
    connection_timeout = 10.0
    network_timeout = 10.0
    _next_start = 0.0
    _lag_ms = 0.0

    def wait_time(self) -> float:
        # Keep to the schedule (catching up when late) rather than "wait after each request":
        # a slow response then does not lower the offered rate, as in an open model. A task
        # that starts late carries its lag into its requests' corrected latency (see Sli).
        Clock.count_task()
        self._next_start += shapes.PACING_SECONDS
        wait = self._next_start - time.monotonic()
        self._lag_ms = max(0.0, -wait) * 1000
        Sli.record_lag(self._lag_ms)
        return max(0.0, wait)

    def context(self) -> dict[str, Any]:
        return {"lag_ms": self._lag_ms}

    def on_start(self) -> None:
        self.number = next(_sequence)
        self.project_ids: list[str] = []
        self.login(self.account_email())
        gevent.sleep(random.uniform(0, shapes.PACING_SECONDS))  # random phase: no lockstep bursts
        self._next_start = time.monotonic()

    def account_email(self) -> str:
        raise NotImplementedError

    def login(self, email: str) -> None:
        """Log in and fetch the profile, as a browser client does after its login form."""
        self.email = email
        self.auth: dict[str, str] = {}
        with self.client.post(
            shapes.LOGIN,
            json={"email": email, "password": accounts.password()},
            name=shapes.LOGIN,
            catch_response=True,
        ) as response:
            token = response.json().get("accessToken") if response.status_code == 200 else None
            if not token:
                response.failure(f"login as {email} failed: HTTP {response.status_code}")
                return
        self.auth = {"Authorization": f"Bearer {token}"}
        self.client.get(shapes.ME, headers=self.auth, name=shapes.ME)

    def relogin(self) -> None:
        """The session expired: log out, then log in again."""
        self.client.post(shapes.LOGOUT, headers=self.auth, name=shapes.LOGOUT)
        self.login(self.email)

    def list_pages(self, params: str = "") -> None:
        """Walk up to LIST_PAGES pages through the cursor, remembering the ids seen."""
        cursor: str | None = None
        seen: list[str] = []
        for _ in range(shapes.LIST_PAGES):
            query = f"?limit={PAGE_SIZE}{params}" + (f"&cursor={cursor}" if cursor else "")
            with self.client.get(
                PROJECTS + query, headers=self.auth, name=PROJECTS, catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"HTTP {response.status_code}")
                    return
                body = response.json()
            seen.extend(item["id"] for item in body["data"])
            cursor = body["meta"].get("nextCursor")
            if not body["meta"].get("hasMore") or not cursor:
                break
        if seen:
            self.project_ids = seen

    def create_project(self) -> str | None:
        payload = {
            "name": f"load {uuid.uuid4().hex[:12]}",
            "description": "created by the load test",
            "type": random.choice(("internal", "client", "research")),
        }
        headers = {**self.auth, "Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(
            PROJECTS, json=payload, headers=headers, name=PROJECTS, catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"HTTP {response.status_code}")
                return None
            project_id: str = response.json()["id"]
        return project_id

    def any_project(self) -> str | None:
        return random.choice(self.project_ids) if self.project_ids else None


class MemberUser(JourneyUser):
    """A project owner (role member): browses, opens, creates and edits their own projects."""

    weight = shapes.MEMBER_WEIGHT

    def account_email(self) -> str:
        if self.number % NEWCOMER_EVERY == NEWCOMER_EVERY - 1:
            return self.register()
        return accounts.owner_email(self.number % OWNERS)

    def register(self) -> str:
        email = f"newcomer-{uuid.uuid4().hex}@{accounts.EMAIL_DOMAIN}"
        self.client.post(
            shapes.REGISTER,
            name=shapes.REGISTER,
            json={"email": email, "name": "Load Newcomer", "password": accounts.password()},
        )
        return email

    @task(shapes.MEMBER_TASKS["signup"])
    def sign_up(self) -> None:
        """A visitor creates an account (and does not use it: the member keeps its session)."""
        self.register()

    @task(shapes.MEMBER_TASKS["list"])
    def list_projects(self) -> None:
        self.list_pages()

    @task(shapes.MEMBER_TASKS["get"])
    def get_project(self) -> None:
        project_id = self.any_project()
        if project_id:
            self.client.get(PROJECT.format(project_id=project_id), headers=self.auth, name=PROJECT)

    @task(shapes.MEMBER_TASKS["create"])
    def create(self) -> None:
        project_id = self.create_project()
        if project_id:
            self.project_ids.append(project_id)

    @task(shapes.MEMBER_TASKS["update"])
    def update_project(self) -> None:
        project_id = self.any_project()
        if project_id:
            self.client.patch(
                PROJECT.format(project_id=project_id),
                headers=self.auth,
                name=PROJECT,
                json={"description": f"edited {time.time():.0f}"},
            )

    @task(shapes.MEMBER_TASKS["relogin"])
    def session_expired(self) -> None:
        self.relogin()


class ManagerUser(JourneyUser):
    """A manager: reviews active projects and deletes the ones it created (so members never 404)."""

    weight = shapes.MANAGER_WEIGHT

    def on_start(self) -> None:
        self.created: deque[str] = deque()
        super().on_start()

    def account_email(self) -> str:
        return accounts.manager_email(self.number % MANAGERS)

    @task(shapes.MANAGER_TASKS["list"])
    def review_active(self) -> None:
        self.list_pages("&status=active")

    @task(shapes.MANAGER_TASKS["get"])
    def get_project(self) -> None:
        project_id = self.any_project()
        if project_id:
            self.client.get(PROJECT.format(project_id=project_id), headers=self.auth, name=PROJECT)

    @task(shapes.MANAGER_TASKS["create"])
    def create(self) -> None:
        project_id = self.create_project()
        if project_id:
            self.created.append(project_id)

    @task(shapes.MANAGER_TASKS["delete"])
    def delete_project(self) -> None:
        project_id = self.created.popleft() if self.created else self.create_project()
        if project_id:
            self.client.delete(PROJECT.format(project_id=project_id), headers=self.auth, name=PROJECT)


class ScraperUser(FastHttpUser):
    """Background traffic: what kubelet probes and Prometheus scrapes add (see shapes.SCRAPE_ROUTES)."""

    fixed_count = PLAN.background_users
    wait_time = constant_pacing(1.0)
    scrapes = 0

    @task
    def probe_and_scrape(self) -> None:
        self.client.get("/health/live", name="/health/live")
        self.client.get("/health/ready", name="/health/ready")
        self.scrapes += 1
        if self.scrapes % 5 == 0:
            self.client.get("/metrics", name="/metrics")


class PlannedShape(LoadTestShape):
    """Delegates to the plan (the recorder ends the warm-up, on a timeline sample boundary)."""

    def tick(self) -> tuple[int, float] | None:
        return PLAN.tick(self.get_run_time())


class Recorder:
    """Gathers the figures on the master (or the only process) and writes them for the gate."""

    measuring_since: float | None = None
    stopped_at: float | None = None
    timeline: list[dict[str, Any]] = []
    worker_tasks: dict[str, int] = {}
    worker_sli: dict[str, dict[str, SliCounts]] = {}
    worker_lag: dict[str, dict[float, int]] = {}
    _previous: dict[str, tuple[int, int, dict[float, int]]] = {}

    @classmethod
    def sample(cls, environment: Environment) -> None:
        """Every second: per-endpoint requests, failures and p50/p95 of that second."""
        assert environment.runner is not None
        stats = environment.runner.stats
        point: dict[str, Any] = {
            "t": round(Clock.elapsed(), 2),
            "users": environment.runner.user_count,
            "warmup": cls.measuring_since is None,
            "endpoints": {},
        }
        for entry in [*stats.entries.values(), stats.total]:
            key = "total" if entry is stats.total else f"{entry.method} {entry.name}"
            before = cls._previous.get(key, (0, 0, {}))
            now = (
                entry.num_requests,
                entry.num_failures,
                {float(k): v for k, v in entry.response_times.items()},
            )
            if now[0] < before[0]:  # statistics were reset in between
                before = (0, 0, {})
            hist = {k: v - before[2].get(k, 0) for k, v in now[2].items() if v - before[2].get(k, 0) > 0}
            cls._previous[key] = now
            if key == "total":
                point["total_hist"] = hist
            elif now[0] - before[0] > 0:
                point["endpoints"][key] = {
                    "n": now[0] - before[0],
                    "fails": now[1] - before[1],
                    "p50": percentile(hist, 0.5),
                    "p95": percentile(hist, 0.95),
                }
        cls.timeline.append(point)
        if cls.measuring_since is None and Clock.elapsed() >= PLAN.warmup_seconds:
            # End of the warm-up: what Locust reports (HTML too) from here on is the measurement.
            stats.reset_all()
            Sli.start()
            cls._previous = {}
            cls.measuring_since = time.time()

    @classmethod
    def write(cls, environment: Environment, path: Path) -> None:
        assert environment.runner is not None
        runner = environment.runner
        stats = runner.stats
        end = cls.stopped_at or time.time()
        measured = end - (cls.measuring_since or stats.start_time)
        cpu_warning = runner.cpu_warning_emitted or bool(getattr(runner, "worker_cpu_warning_emitted", False))
        executed = Clock.tasks_executed + sum(cls.worker_tasks.values())
        planned = sum(s.users * s.duration / shapes.PACING_SECONDS for s in PLAN.steps)
        sli = dict(Sli.counts)
        for worker in cls.worker_sli.values():
            for key, counts in worker.items():
                sli[key] = sli[key] + counts if key in sli else counts
        lag = merge([Sli.schedule_lag_ms, *cls.worker_lag.values()])
        data = {
            "locust_version": locust.__version__,
            "host": environment.host,
            "plan": PLAN.to_json(),
            "measured_seconds": measured,
            "cpu_warning": cpu_warning,
            "tasks": {"planned": planned, "executed": executed},
            "endpoints": [
                {
                    "method": e.method,
                    "name": e.name,
                    "num_requests": e.num_requests,
                    "num_failures": e.num_failures,
                    "response_times": e.response_times,
                    "sli": sli[f"{e.method} {e.name}"].to_json() if f"{e.method} {e.name}" in sli else None,
                }
                for e in stats.entries.values()
            ],
            "errors": [e.to_dict() for e in stats.errors.values()],
            "timeline": cls.timeline,
            "schedule_lag_ms": lag,
        }
        path.write_text(json.dumps(data))


@events.request.add_listener
def _count_sli(
    request_type: str,
    name: str,
    response_time: float,
    response: Any = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    Sli.record(f"{request_type} {name}", status, response_time, (context or {}).get("lag_ms", 0.0))


@events.test_start.add_listener
def _started(environment: Environment, **_: Any) -> None:
    Clock.started = time.monotonic()
    Sli.on_worker = isinstance(environment.runner, WorkerRunner)
    if not isinstance(environment.runner, WorkerRunner):

        def sample_every_second() -> None:
            while True:
                gevent.sleep(1.0)
                Recorder.sample(environment)

        environment.sampler = gevent.spawn(sample_every_second)  # type: ignore[attr-defined]


@events.test_stop.add_listener
def _stopped(environment: Environment, **_: Any) -> None:
    if Recorder.stopped_at is None:
        Recorder.stopped_at = time.time()
    sampler = getattr(environment, "sampler", None)
    if sampler is not None:
        sampler.kill(block=False)


@events.report_to_master.add_listener
def _report_tasks(client_id: str, data: dict[str, Any]) -> None:
    # Running totals: the master keeps each worker's latest report.
    data["journey_tasks"] = Clock.tasks_executed
    data["sli"] = {key: counts.to_json() for key, counts in Sli.counts.items()}
    data["schedule_lag_ms"] = {str(k): v for k, v in Sli.schedule_lag_ms.items()}


@events.worker_report.add_listener
def _collect_tasks(client_id: str, data: dict[str, Any]) -> None:
    Recorder.worker_tasks[client_id] = int(data.get("journey_tasks", 0))
    Recorder.worker_sli[client_id] = {
        key: SliCounts.from_json(counts) for key, counts in data.get("sli", {}).items()
    }
    Recorder.worker_lag[client_id] = {float(k): int(v) for k, v in data.get("schedule_lag_ms", {}).items()}


@events.quitting.add_listener
def _quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    raw = os.environ.get("LOADTEST_RAW")
    if raw:
        Recorder.write(environment, Path(raw))
    # The gate decides pass/fail from the figures; Locust's own "any failure -> 1" would pre-empt it.
    environment.process_exit_code = 0
