"""`kit smoke`: the post-deploy journey, and the synthetic probe when --pushgateway is set.

Steps: health (GET /health/ready), login with the smoke account, create a project, read it,
find it in the list, delete it, metrics exposed (GET /metrics). The project is deleted even
when a step in between fails. Deleting needs a manager: the smoke account is one (docs/operations.md,
"The smoke account"). Through the public edge only /api is routed, so health and metrics answer
404 there: they are reported as "not routed" and left out of the verdict; the in-cluster probe
goes through the Service and checks all seven.

Imports only the standard library, httpx and prometheus-client: the service image runs this
module as the synthetic probe CronJob (`kit smoke --json`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from kit.cli import output
from kit.cli.errors import FAILED, OK, UNREACHABLE, USAGE, KitError

PUSH_JOB = "reference-service-synthetic"
PROJECTS = "/api/v1/projects"
NOT_ROUTED = "not routed"


@dataclass
class Step:
    name: str
    ok: bool
    status: int | None
    seconds: float
    detail: str = ""

    @property
    def counted(self) -> bool:
        return self.detail != NOT_ROUTED


@dataclass
class Journey:
    url: str
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        counted = [s for s in self.steps if s.counted]
        return bool(counted) and all(s.ok for s in counted)


class _StepFailed(Exception):
    pass


class _Runner:
    def __init__(self, client: httpx.Client, journey: Journey) -> None:
        self.client = client
        self.journey = journey

    def step(
        self,
        name: str,
        method: str,
        path: str,
        expect: int,
        check: Callable[[httpx.Response], str | None] | None = None,
        optional_route: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            self._record(name, False, None, started, f"{type(error).__name__}: {error}")
            if not self.journey.steps[:-1]:
                self.journey.unreachable = True
            raise _StepFailed from None
        if optional_route and response.status_code == 404:
            self._record(name, True, 404, started, NOT_ROUTED)
            return response
        problem = None if response.status_code == expect else f"expected {expect}: {_body(response)}"
        if problem is None and check is not None:
            problem = check(response)
        self._record(name, problem is None, response.status_code, started, problem or "")
        if problem is not None:
            raise _StepFailed
        return response

    def _record(self, name: str, ok: bool, status: int | None, started: float, detail: str) -> None:
        self.journey.steps.append(Step(name, ok, status, time.perf_counter() - started, detail))


def _body(response: httpx.Response) -> str:
    return response.text.strip().replace("\n", " ")[:200]


def journey(url: str, email: str, password: str, *, host_header: str | None, timeout: float) -> Journey:
    result = Journey(url=url)
    headers = {"User-Agent": "kit-smoke", **({"Host": host_header} if host_header else {})}
    started = time.perf_counter()
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as client:
        run = _Runner(client, result)
        project_id: str | None = None
        try:
            run.step("health", "GET", "/health/ready", 200, optional_route=True)
            login = run.step(
                "login",
                "POST",
                "/api/v1/auth/login",
                200,
                check=lambda r: None if _token(r) else "no access token in the answer",
                json={"email": email, "password": password},
            )
            client.headers["Authorization"] = f"Bearer {_token(login)}"
            name = f"kit-smoke-{int(time.time())}-{secrets.token_hex(3)}"
            created = run.step(
                "create",
                "POST",
                PROJECTS,
                201,
                json={"name": name, "type": "internal", "description": "created and deleted by kit smoke"},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            project_id = str(created.json()["id"])
            run.step(
                "read",
                "GET",
                f"{PROJECTS}/{project_id}",
                200,
                check=lambda r: (
                    None if r.json().get("name") == name else f"read back {r.json().get('name')!r}"
                ),
            )
            run.step(
                "list",
                "GET",
                PROJECTS,
                200,
                check=lambda r: (
                    None
                    if any(p.get("id") == project_id for p in r.json().get("data", []))
                    else "the new project is not on the first page (newest first)"
                ),
                params={"limit": 100},
            )
            run.step("delete", "DELETE", f"{PROJECTS}/{project_id}", 204)
            project_id = None
            run.step(
                "metrics",
                "GET",
                "/metrics",
                200,
                check=lambda r: None if "http_requests_total" in r.text else "no http_requests_total series",
                optional_route=True,
            )
        except _StepFailed:
            pass
        finally:
            if project_id is not None:  # a later step failed: do not leave the project behind
                with contextlib.suppress(httpx.HTTPError):
                    client.delete(f"{PROJECTS}/{project_id}")
    result.seconds = time.perf_counter() - started
    return result


def _token(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    token = body.get("accessToken") or body.get("access_token")
    return str(token) if token else None


def push(journey: Journey, gateway: str, grouping: dict[str, str], timeout: float) -> None:
    """The synthetic_* gauges of CONTRACTS.md, replacing this group's previous push."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    Gauge("synthetic_journey_success", "1 if every step of the smoke journey passed", registry=registry).set(
        1 if journey.ok else 0
    )
    Gauge("synthetic_journey_duration_seconds", "Wall time of the whole journey", registry=registry).set(
        journey.seconds
    )
    Gauge(
        "synthetic_journey_last_run_timestamp_seconds", "When the journey last ran", registry=registry
    ).set_to_current_time()
    steps = Gauge("synthetic_step_success", "1 if the step passed", ["step"], registry=registry)
    durations = Gauge("synthetic_step_duration_seconds", "Wall time of the step", ["step"], registry=registry)
    for step in journey.steps:
        if step.counted:
            steps.labels(step.name).set(1 if step.ok else 0)
            durations.labels(step.name).set(step.seconds)
    try:
        push_to_gateway(gateway, job=PUSH_JOB, registry=registry, grouping_key=grouping, timeout=timeout)
    except OSError as error:  # URLError and HTTPError are OSErrors
        raise KitError(f"Pushgateway {gateway} unreachable: {error}", UNREACHABLE) from None


def _setting(value: str | None, env: str) -> str | None:
    return value or os.environ.get(env) or None


def run(args: argparse.Namespace) -> int:
    url = args.url
    if url is None:
        from kit.cli import envs

        url = envs.resolve(args.env).base_url
        if url is None:
            raise KitError(f"environment {args.env!r} has no host: pass --url", USAGE)
    email = _setting(args.email, "KIT_SMOKE_EMAIL")
    password = _setting(args.password, "KIT_SMOKE_PASSWORD")
    if not email or not password:
        raise KitError(
            "the journey needs the smoke account: --email/--password or KIT_SMOKE_EMAIL/KIT_SMOKE_PASSWORD",
            USAGE,
        )
    # The probe passes the ConfigMap's TRUSTED_HOSTS: with several hosts, the first one.
    host_header = (_setting(args.host_header, "KIT_SMOKE_HOST_HEADER") or "").split(",")[0].strip() or None
    result = journey(url, email, password, host_header=host_header, timeout=args.timeout)
    gateway = _setting(args.pushgateway, "KIT_PUSHGATEWAY_URL")
    push_error = None
    if gateway:
        grouping = {
            "namespace": _setting(args.namespace, "KIT_NAMESPACE") or "unknown",
            "environment": _setting(args.environment, "KIT_ENVIRONMENT") or "unknown",
        }
        try:
            push(result, gateway, grouping, args.timeout)
        except KitError as error:
            push_error = error
    if args.json:
        output.emit_json(
            {
                "url": result.url,
                "ok": result.ok,
                "seconds": result.seconds,
                "steps": [asdict(s) for s in result.steps],
            }
        )
    else:
        output.table(
            f"smoke journey against {result.url}",
            ["step", "result", "status", "ms", "detail"],
            [
                [
                    s.name,
                    ("ok" if s.ok else "FAILED") if s.counted else "-",
                    s.status,
                    f"{s.seconds * 1000:.0f}",
                    s.detail,
                ]
                for s in result.steps
            ],
        )
        output.line(f"journey: {'passed' if result.ok else 'FAILED'} in {result.seconds:.2f}s")
    if push_error is not None:
        output.note(f"error: {push_error.message}")
    if result.unreachable:
        output.note(f"error: service unreachable at {result.url}: {result.steps[0].detail}")
        return UNREACHABLE
    if not result.ok:
        return FAILED
    return push_error.code if push_error else OK
