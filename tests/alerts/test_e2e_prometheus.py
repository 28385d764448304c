"""End to end: the generated rules and dashboards against a real Prometheus and the real service.

Debian's Prometheus scrapes the API and the outbox worker (uvicorn, PostgreSQL, Redis, all on
loopback) while a bounded load runs. The rules are the generated ones with every window
shortened 60 times (1h -> 1m, 5m -> 5s; rule names unchanged) and evaluated every second.

1. Every recording rule and every dashboard query returns data. kube-state-metrics, cAdvisor,
   cert-manager and synthetic-probe (Pushgateway) series, which need a cluster, come from a
   static exposition served on loopback. The rules are prod's, scoped to the test's namespace.
2. The service restarted with FAULT_INJECTION_ERROR_RATIO=0.5 makes the availability page
   alert fire in /api/v1/alerts; restarted without it, the alert resolves.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kit import alerts_gen, dashboards_gen, slo
from loadtests.stack import VENV_PYTHON, Backing, migrate, service, webhook_receiver
from testsupport import prometheus as testsupport_prometheus
from testsupport.prometheus import RULES_FILE, cluster_exporter, query, service_prometheus_config
from testsupport.servers import PrometheusServer, RedisServer, free_port, prometheus_server

pytestmark = pytest.mark.slow

SPEC = slo.load()
NAMESPACE = "reference-service-e2e"
WINDOW_SCALE = 1 / 60
RATE_INTERVAL = "5s"  # $__rate_interval for a 1s scrape interval
PAGE_ALERT = f"{SPEC.service.alert_prefix}AvailabilityBudgetBurn"
FAULT_RATIO = "0.5"


def point_job_at(prometheus: PrometheusServer, job: str, address: str) -> None:
    testsupport_prometheus.point_job_at(prometheus, job, [address], NAMESPACE)


@dataclass
class Load:
    """Bounded traffic over every endpoint class, following the API across restarts."""

    base_url: str
    stop: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self, threads: int = 2) -> list[threading.Thread]:
        workers = [threading.Thread(target=self._user, args=(i,), daemon=True) for i in range(threads)]
        for worker in workers:
            worker.start()
        return workers

    def _call(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        try:
            response = client.request(method, f"{self.base_url}{path}", **kwargs)
        except httpx.HTTPError as error:  # the API is being restarted
            self.errors.append(f"{method} {path}: {error!r}")
            time.sleep(0.2)
            return None
        self.requests += 1
        return response

    def _login(self, client: httpx.Client, email: str, password: str) -> str | None:
        response = self._call(
            client, "POST", "/api/v1/auth/login", json={"email": email, "password": password}
        )
        return (
            response.json()["accessToken"] if response is not None and response.status_code == 200 else None
        )

    def _user(self, index: int) -> None:
        email, password = f"e2e-{index}-{uuid.uuid4().hex[:8]}@example.com", secrets.token_urlsafe(16)
        with httpx.Client(timeout=5) as client:
            self._call(
                client,
                "POST",
                "/api/v1/auth/register",
                json={"email": email, "password": password, "name": "E2E"},
            )
            token = None
            step = 0
            if index == 0:  # a burst past the login rate limit, so 429s are counted too
                for _ in range(8):
                    token = self._login(client, email, password) or token
            while not self.stop.is_set():
                step += 1
                if token is None or step % 40 == 0:  # logins also exercise the login rate limit
                    token = self._login(client, email, password) or token
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                me = self._call(client, "GET", "/api/v1/users/me", headers=headers)
                self._call(client, "GET", "/health/live")
                self._call(client, "GET", "/api/v1/projects", headers=headers, params={"limit": 10})
                created = self._call(
                    client,
                    "POST",
                    "/api/v1/projects",
                    headers=headers,
                    json={"name": f"e2e project {step}", "type": "internal"},
                )
                if created is not None and created.status_code == 201:
                    project = f"/api/v1/projects/{created.json()['id']}"
                    self._call(client, "GET", project, headers=headers)
                    self._call(client, "PATCH", project, headers=headers, json={"description": "touched"})
                    self._call(client, "DELETE", project, headers=headers)  # members may not: 403
                if me is not None and me.status_code == 200 and step % 10 == 0:
                    self._call(
                        client,
                        "PATCH",
                        f"/api/v1/users/{me.json()['id']}/role",
                        headers=headers,
                        json={"role": "admin"},
                    )  # 403: only admins change roles
                    self._call(client, "GET", "/health/ready")
                    self._call(client, "GET", "/no/such/route")
                    self._call(client, "POST", "/api/v1/auth/logout", headers=headers)
                time.sleep(0.05)


def active_alerts(prometheus: PrometheusServer, name: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus.url}/api/v1/alerts", timeout=10)
    return [a for a in response.json()["data"]["alerts"] if a["labels"]["alertname"] == name]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def every_check_query() -> list[tuple[str, str]]:
    """(what, expr): each recording rule (with its static labels) and each dashboard target."""
    options = alerts_gen.RenderOptions(SPEC.alerting_environment, namespace=NAMESPACE)
    checks = []
    for group in alerts_gen.rules_document(SPEC, options)["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                labels = ", ".join(f'{k}="{v}"' for k, v in rule.get("labels", {}).items())
                checks.append((f"rule {rule['record']}{{{labels}}}", f"{rule['record']}{{{labels}}}"))
    for uid, document in dashboards_gen.render_dashboards(SPEC, SPEC.alerting_environment).items():
        for title, expr in dashboards_gen.queries(document):
            concrete = dashboards_gen.concrete_query(expr, rate_interval=RATE_INTERVAL)
            checks.append((f"{uid} / {title}", concrete))
    return checks


@pytest.fixture
def backing(postgres_database: str, redis: RedisServer) -> Iterator[Backing]:
    with webhook_receiver() as hook:
        stack = Backing(postgres_database, redis.url, hook)
        migrate(VENV_PYTHON, stack)
        yield stack


def test_rules_and_dashboards_against_real_prometheus(
    backing: Backing, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    timings: dict[str, float] = {}
    started = time.monotonic()
    options = alerts_gen.RenderOptions(
        SPEC.alerting_environment, window_scale=WINDOW_SCALE, evaluation_interval="1s", namespace=NAMESPACE
    )
    worker_port = free_port()
    overrides = {
        "ENVIRONMENT": "test",
        "JWT_SECRET": secrets.token_urlsafe(48),  # shared: tokens survive the switch between versions
        "RATE_LIMIT_ENABLED": "true",
        "DRAIN_TIMEOUT_SECONDS": "1",
        "WORKER_METRICS_PORT": str(worker_port),
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    }
    checks = every_check_query()
    load = Load(base_url="")
    with contextlib.ExitStack() as stack:
        infra = stack.enter_context(cluster_exporter(SPEC.selectors, NAMESPACE))
        rules = alerts_gen.render_rules_yaml(SPEC, options)
        prometheus = stack.enter_context(
            prometheus_server(service_prometheus_config(SPEC.selectors, infra), {RULES_FILE: rules})
        )
        # The healthy version (API + outbox worker) serves the whole test. The faulty version
        # (API only, FAULT_INJECTION_ERROR_RATIO) starts early, idle, so that "deploying" it is
        # a switch of scrape target and traffic, like a rollout, and rolling back is the reverse.
        healthy = stack.enter_context(service(backing, tmp_path / "healthy", cpu=None, overrides=overrides))
        faulty = stack.enter_context(
            service(
                backing,
                tmp_path / "faulty",
                cpu=None,
                with_worker=False,
                overrides={**overrides, "FAULT_INJECTION_ERROR_RATIO": FAULT_RATIO},
            )
        )

        def route_to(api_base_url: str) -> None:
            point_job_at(prometheus, SPEC.selectors.api_job, api_base_url.removeprefix("http://"))
            load.base_url = api_base_url

        point_job_at(prometheus, SPEC.selectors.worker_job, f"127.0.0.1:{worker_port}")
        route_to(healthy.base_url)
        timings["start (prometheus, 2 API versions, worker)"] = time.monotonic() - started
        threads = load.run()
        try:
            # 1. Data everywhere: every recording rule and every dashboard query.
            empty: list[str] = []

            def all_non_empty() -> bool:
                with ThreadPoolExecutor(max_workers=8) as pool:
                    results = list(pool.map(lambda check: query(prometheus, check[1]), checks))
                empty[:] = [what for (what, _), result in zip(checks, results, strict=True) if not result]
                return not empty

            try:
                timings["load start -> every query has data"] = wait_for(
                    all_non_empty, 90, "every query non-empty"
                )
            except AssertionError:
                pytest.fail(f"{len(empty)} of {len(checks)} queries stay empty: {empty}")
            assert active_alerts(prometheus, PAGE_ALERT) == [], "no page before the fault"

            def pages(state: str | None = None) -> list[dict[str, Any]]:
                return [
                    a
                    for a in active_alerts(prometheus, PAGE_ALERT)
                    if a["labels"]["severity"] == "critical" and state in {None, a["state"]}
                ]

            # 2. "Deploy" the faulty version: half of the /api requests answer 500.
            fault_started = time.monotonic()
            route_to(faulty.base_url)
            wait_for(lambda: bool(pages("firing")), 60, f"{PAGE_ALERT} firing")
            timings["fault -> page firing"] = time.monotonic() - fault_started
            page = pages("firing")[0]
            assert page["labels"]["namespace"] == NAMESPACE
            assert page["labels"]["job"] == SPEC.selectors.api_job
            assert page["labels"]["long_window"] in {"1h", "6h"}
            assert page["annotations"]["runbook_url"].endswith(f"/runbooks/{PAGE_ALERT}.md")
            assert page["annotations"]["description"].startswith(f"{SPEC.selectors.api_job} in {NAMESPACE}: ")
            assert f"var-namespace={NAMESPACE}" in page["annotations"]["dashboard_url"]

            # 3. Roll back: the page (both critical window pairs) resolves. The slow-burn ticket
            # may keep firing over its longer windows, as tests/alerts/promtool shows.
            fault_stopped = time.monotonic()
            route_to(healthy.base_url)
            wait_for(lambda: not pages(), 60, f"{PAGE_ALERT} (critical) resolved")
            timings["rollback -> page resolved"] = time.monotonic() - fault_stopped
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(timeout=10)
            timings["total"] = time.monotonic() - started
            summary = ", ".join(f"{what}: {seconds:.1f}s" for what, seconds in timings.items())
            # The timings are the point: in the JUnit report, and in any failure's message.
            record_property("timings", summary)
    assert load.requests > 100, f"{len(checks)} queries, {load.requests} requests; {summary}"
