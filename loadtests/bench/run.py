"""``make bench``: the service with all middleware on against bare FastAPI baselines, side by side.

Every server runs alone on core 0 (``taskset -c 0``); the load tools run on core 1. PostgreSQL
floats (it needs a core too; on a 2-core machine it shares with whichever side waits on it).

* Capacity: wrk, closed loop, 1 thread x 32 connections for ``--seconds``; wrk's own Lua
  ``done()`` reports p50/p95/p99. Every server is up together and they are measured in
  alternation, ``--rounds`` times (service, its baselines, service, ...): on a shared machine a
  burst of noise hits one run, not a whole side. A ratio is the median of the rounds' ratios
  (each pair measured seconds apart); a throughput figure is each side's median run.
* The list baselines answer the member's page (the service's query, its page model through
  FastAPI's ``response_model``) with a raw asyncpg pool (``bare_asyncpg.py``) and with
  SQLAlchemy async (``bare_sqlalchemy.py``); liveness's is a constant (``bare_constant.py``).
* Latency at a fixed 50 % of capacity: ``loadtests.bench.openloop`` (open loop, latencies from
  the scheduled start, so no coordinated omission), also in alternating rounds, median p95.
* Scaling: when ``make bench-seed-large`` has kept a 10-million-project cluster
  (``loadtests/bench/large.py``), a second API on it is measured the same way, beside the 100k one.
* Start-up: the API spawned ``--spawns`` times, seconds to its first 200 on /health/ready, median.
* Login: argon2id CPU per verify, timed in-process with the service's hasher (``process_time``),
  plus wrk against POST /auth/login.
* Memory: the API process's RSS (psutil) after all its runs.

The service runs as in production (``LOG_LEVEL=INFO`` JSON access logs, metrics, request ids,
rate limiting via Redis with limits no client reaches, all middleware). One table, each figure
with its goal and met/NOT (and ``--previous``'s figure beside it), goes to stdout and
``reports/bench/bench.{md,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import operator
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil  # type: ignore[import-untyped]

from kit.paths import LOADTESTS, ROOT
from loadtests import accounts, stack
from loadtests.bench import large
from loadtests.seed import SeedSize, asyncpg_dsn
from testsupport.servers import free_port

OUT = ROOT / "reports" / "bench"
WRK_SCRIPT = LOADTESTS / "bench" / "wrk_report.lua"
UNLIMITED = "1000000/second"  # the limiter runs (Redis round trip included) but never rejects
SERVICE_OVERRIDES = {
    "LOG_LEVEL": "INFO",
    # As in production (overlays set the environment's host): the Host check runs.
    "TRUSTED_HOSTS": stack.LOOPBACK,
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_READ": UNLIMITED,
    "RATE_LIMIT_WRITE": UNLIMITED,
    "RATE_LIMIT_LOGIN": UNLIMITED,
    "RATE_LIMIT_LOGIN_ACCOUNT": UNLIMITED,  # else one account's logins turn to 429s after 100/hour
    "SHUTDOWN_DELAY_SECONDS": "0",  # no load balancer to drain from: stop at once
    # Bytecode as the image has it (compiled at build): kept here, written by the first start.
    "PYTHONDONTWRITEBYTECODE": "",
    "PYTHONPYCACHEPREFIX": str(OUT / "pycache"),
}

Run = dict[str, float]  # one wrk or open-loop measurement


class BenchError(RuntimeError):
    pass


# --- the figures and their goals (pure: tested in tests/loadtests/test_bench_summary.py) -----

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}
_FORMATS: dict[str, Callable[[float], str]] = {
    "req/s": lambda v: f"{v:.0f} req/s",
    "x": lambda v: f"{v:.2f}x",
    "ms": lambda v: f"{v:.2f} ms",
    "s": lambda v: f"{v:.2f} s" if v < 10 else f"{v:.0f} s",
    "MB": lambda v: f"{v:.0f} MB",
}


def render(value: float, unit: str) -> str:
    return _FORMATS[unit](value)


@dataclass(frozen=True)
class Goal:
    op: str  # ">=", "<=" or "<"
    limit: float
    unit: str

    def text(self) -> str:
        return f"{self.op} {render(self.limit, self.unit)}"

    def met(self, value: float | None) -> bool:
        """A figure that was not measured does not meet its goal (never a silent pass)."""
        return value is not None and _OPERATORS[self.op](value, self.limit)


@dataclass(frozen=True)
class Figure:
    key: str  # stable across runs: --previous matches on it
    label: str
    value: float | None  # None: not measured, ``detail`` says why
    unit: str
    detail: str = ""
    goal: str | None = None
    met: bool | None = None


def figure(
    key: str, label: str, value: float | None, unit: str, detail: str = "", goal: Goal | None = None
) -> Figure:
    return Figure(
        key, label, value, unit, detail, goal.text() if goal else None, goal.met(value) if goal else None
    )


def median_run(runs: Sequence[Run]) -> Run:
    """The run with the median throughput (its own latencies with it, not mixed across runs)."""
    return sorted(runs, key=lambda run: run["rps"])[(len(runs) - 1) // 2]


def paired_ratios(top: Sequence[Run], bottom: Sequence[Run], key: str = "rps") -> list[float]:
    """Round by round: each ratio compares two runs measured seconds apart."""
    return [t[key] / b[key] for t, b in zip(top, bottom, strict=True)]


def throughput(key: str, label: str, runs: Sequence[Run]) -> Figure:
    run = median_run(runs)
    detail = f"p50 {run['p50_ms']:.2f} / p95 {run['p95_ms']:.2f} / p99 {run['p99_ms']:.2f} ms"
    if run["errors"]:
        detail += f", {run['errors']:.0f} errors"
    return figure(key, label, run["rps"], "req/s", detail)


def ratio(key: str, label: str, ratios: Sequence[float], goal: Goal | None = None) -> Figure:
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    return figure(key, label, statistics.median(ratios), "x", f"rounds {rounds}", goal)


def p95_at_half(key: str, label: str, runs: Sequence[Run], goal: Goal | None = None) -> Figure:
    rate = statistics.median(run["achieved_rps"] for run in runs)
    return figure(
        key, label, statistics.median(run["p95_ms"] for run in runs), "ms", f"at {rate:.0f}/s", goal
    )


def absent(key: str, label: str, unit: str, why: str, goal: Goal | None = None) -> Figure:
    return figure(key, label, None, unit, why, goal)


def markdown(result: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> str:
    """One table: every figure, its goal and whether it is met, and ``previous``'s beside it."""
    before = {f["key"]: f for f in previous["figures"]} if previous else {}
    header = ["figure", "measured", "goal", "met"] + (["previous"] if previous else [])
    lines = [
        f"{result.get('cpus', '?')} CPUs, load average {_load(result, 'before')} before and "
        f"{_load(result, 'after')} after (other work on the machine); {result.get('rounds', '?')} "
        f"alternating rounds of {result.get('seconds', '?')} s per measurement.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for f in result["figures"]:
        measured = render(f["value"], f["unit"]) if f["value"] is not None else ""
        measured = f"{measured} ({f['detail']})" if measured and f["detail"] else measured or f["detail"]
        met = "" if f["goal"] is None else ("met" if f["met"] else "NOT")
        cells = [f["label"], measured, f["goal"] or "", met]
        if previous:
            old = before.get(f["key"])
            cells.append(render(old["value"], old["unit"]) if old and old["value"] is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _load(result: Mapping[str, Any], when: str) -> str:
    load = result.get("load_average", {}).get(when)
    return " / ".join(f"{v:.2f}" for v in load) if load else "?"


def read_previous(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("figures"), list):
        raise BenchError(f"{path} has no figures list (a bench.json from before this table?)")
    return data


# --- measuring ------------------------------------------------------------------------------


def wrk(url: str, seconds: float, connections: int = 32, env: Mapping[str, str] | None = None) -> Run:
    argv = [
        *stack.pinning(1),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    environ = {**os.environ, **(env or {})}
    done = subprocess.run(argv, env=environ, capture_output=True, text=True, check=False)  # noqa: S603
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("{")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed on {url}: {(done.stderr or done.stdout).strip()[-200:]}")
    raw = json.loads(line)
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["socket_errors"] + raw["non_2xx"],
    }


def open_loop(url: str, rate: float, seconds: float, headers: list[str]) -> Run:
    argv = [
        *stack.pinning(1),
        sys.executable,
        "-m",
        "loadtests.bench.openloop",
        "--url",
        url,
        "--rate",
        f"{rate:.0f}",
        "--duration",
        str(seconds),
    ]
    for header in headers:
        argv += ["--header", header]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BenchError(f"open-loop run failed on {url}: {done.stderr.strip()[-200:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def login_token(base_url: str) -> str:
    body = json.dumps({"email": accounts.owner_email(0), "password": accounts.password()}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback http
        f"{base_url}/api/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return str(json.loads(response.read())["accessToken"])


def argon2_cpu_ms(samples: int = 20) -> float:
    """CPU milliseconds of one argon2id verify with the service's own hasher and parameters."""
    from app.identity.infrastructure.passwords import owasp_argon2id

    hasher = owasp_argon2id()
    hashed = hasher.hash(accounts.password())
    started = time.process_time()
    for _ in range(samples):
        hasher.verify(accounts.password(), hashed)
    return (time.process_time() - started) / samples * 1000


@contextlib.contextmanager
def bare_app(module: str, backing: stack.Backing, log_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": backing.database_url}
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{module}.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv
            [*stack.pinning(0), sys.executable, "-m", f"loadtests.bench.{module}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not stack.port_is_open(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"{module} did not start (see {log_dir / module}.log)")
                time.sleep(0.1)
            yield f"http://{stack.LOOPBACK}:{port}"
        finally:
            process.terminate()
            process.wait(timeout=20)


async def owner_id(database_url: str) -> str:
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return str(
            await connection.fetchval("SELECT id FROM users WHERE email = $1", accounts.owner_email(0))
        )
    finally:
        await connection.close()


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None = None
    runs: list[Run] = field(default_factory=list)  # closed loop (wrk), one per round
    half: list[Run] = field(default_factory=list)  # open loop at 50 % of capacity, one per round

    def wrk(self, seconds: float) -> Run:
        return wrk(self.url, seconds, env={"BENCH_TOKEN": self.token} if self.token else None)

    def open_loop(self, seconds: float) -> Run:
        headers = [f"Authorization: Bearer {self.token}"] if self.token else []
        return open_loop(self.url, median_run(self.runs)["rps"] / 2, seconds, headers)


LIST_PATH = "/api/v1/projects?limit=20"


def run(seconds: float, rounds: int, size: SeedSize, spawns: int) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: run `make bench-deps` (apt-get install wrk)")
    logs = OUT / "logs"
    kept = large.seeded()
    load_before = os.getloadavg()
    with contextlib.ExitStack() as up:
        backing = up.enter_context(stack.backing_services(size))
        owner = asyncio.run(owner_id(backing.database_url))
        startups = []
        for _ in range(spawns + 1):  # before the rest, so nothing else runs meanwhile
            with stack.service(
                backing,
                logs / "startup",
                cpu=0,
                with_worker=False,
                overrides=SERVICE_OVERRIDES,
            ) as spawned:
                startups.append(spawned.ready_seconds)
        startups = startups[1:]  # the first may have compiled the bytecode the others load
        # All servers share core 0; only the one under load uses it.
        svc = up.enter_context(
            stack.service(backing, logs, cpu=0, with_worker=False, overrides=SERVICE_OVERRIDES)
        )
        baseline = {
            module: up.enter_context(bare_app(module, backing, logs))
            for module in ("bare_constant", "bare_asyncpg", "bare_sqlalchemy")
        }
        token = login_token(svc.base_url)
        targets = {
            "live.service": Target(f"{svc.base_url}/health/live"),
            "live.constant": Target(f"{baseline['bare_constant']}/health/live"),
            "list.service": Target(svc.base_url + LIST_PATH, token),
            "list.asyncpg": Target(f"{baseline['bare_asyncpg']}/projects?owner_id={owner}&limit=20"),
            "list.sqlalchemy": Target(f"{baseline['bare_sqlalchemy']}/projects?owner_id={owner}&limit=20"),
        }
        if kept is not None:
            large_url = up.enter_context(large.cluster(logs / "pg-10m"))
            large_backing = stack.Backing(large_url, backing.redis_url, backing.webhook_url)
            on_large = up.enter_context(
                stack.service(
                    large_backing, logs / "10m", cpu=0, with_worker=False, overrides=SERVICE_OVERRIDES
                )
            )
            targets["list10m.service"] = Target(on_large.base_url + LIST_PATH, login_token(on_large.base_url))
        for target in targets.values():  # warm-up: pools, caches
            target.wrk(2)
        for _ in range(rounds):
            for target in targets.values():
                target.runs.append(target.wrk(seconds))
        listed = [target for key, target in targets.items() if key.startswith("list")]
        for _ in range(rounds):
            for target in listed:
                target.half.append(target.open_loop(seconds))
        login_body = json.dumps({"email": accounts.owner_email(1), "password": accounts.password()})
        login = wrk(
            f"{svc.base_url}/api/v1/auth/login",
            seconds,
            connections=4,
            env={"BENCH_METHOD": "POST", "BENCH_BODY": login_body},
        )
        rss_mb = psutil.Process(svc.api.pid).memory_info().rss / 2**20
    figures = summarise(
        {key: (t.runs, t.half) for key, t in targets.items()},
        login=login,
        argon2_ms=argon2_cpu_ms(),
        startups=startups,
        rss_mb=rss_mb,
        size=size,
        kept=kept,
    )
    return {
        "figures": [asdict(f) for f in figures],
        "seconds": seconds,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "size": asdict(size),
        "large": kept,
    }


def summarise(
    measured: Mapping[str, tuple[list[Run], list[Run]]],
    *,
    login: Run,
    argon2_ms: float,
    startups: list[float],
    rss_mb: float,
    size: SeedSize,
    kept: Mapping[str, Any] | None,
) -> list[Figure]:
    """Every figure of the run in table order, each goal judged."""
    runs = {key: closed for key, (closed, _) in measured.items()}
    half = {key: opened for key, (_, opened) in measured.items()}
    small = f"{size.projects // 1000}k"
    big = f"{kept['projects'] // 1_000_000}M" if kept else "10M"
    page = f"list of 20 ({small} projects)"
    figures = [
        throughput("list.service", f"{page}: service, member's token", runs["list.service"]),
        throughput("list.asyncpg", f"{page}: bare FastAPI + asyncpg", runs["list.asyncpg"]),
        throughput("list.sqlalchemy", f"{page}: bare FastAPI + SQLAlchemy", runs["list.sqlalchemy"]),
        ratio(
            "list.vs_asyncpg",
            "list: service / bare FastAPI + asyncpg",
            paired_ratios(runs["list.service"], runs["list.asyncpg"]),
            Goal(">=", 0.8, "x"),
        ),
        ratio(
            "list.vs_sqlalchemy",
            "list: service / bare FastAPI + SQLAlchemy",
            paired_ratios(runs["list.service"], runs["list.sqlalchemy"]),
        ),
        p95_at_half(
            "list.p95_half",
            f"list p95 at 50 % of capacity, {small}: service",
            half["list.service"],
            Goal("<", 20, "ms"),
        ),
        p95_at_half(
            "list.asyncpg.p95_half", "list p95 at 50 %: bare FastAPI + asyncpg", half["list.asyncpg"]
        ),
        p95_at_half(
            "list.sqlalchemy.p95_half", "list p95 at 50 %: bare FastAPI + SQLAlchemy", half["list.sqlalchemy"]
        ),
    ]
    scaling = Goal("<=", 1.2, "x")
    if "list10m.service" in runs:
        assert kept is not None
        figures += [
            throughput("list10m.service", f"list of 20 ({big} projects): service", runs["list10m.service"]),
            p95_at_half(
                "list10m.p95_half", f"list p95 at 50 % of capacity, {big}: service", half["list10m.service"]
            ),
            ratio(
                "list10m.scaling",
                f"list p95 at 50 %: {big} / {small}",
                paired_ratios(half["list10m.service"], half["list.service"], "p95_ms"),
                scaling,
            ),
            figure(
                "list10m.seed_seconds",
                f"seeding the {big} cluster (make bench-seed-large)",
                kept["seconds"],
                "s",
            ),
        ]
    else:
        figures += [
            absent("list10m.service", f"list of 20 ({big} projects): service", "req/s", large.NOT_SEEDED),
            absent(
                "list10m.p95_half", f"list p95 at 50 % of capacity, {big}: service", "ms", large.NOT_SEEDED
            ),
            absent("list10m.scaling", f"list p95 at 50 %: {big} / {small}", "x", large.NOT_SEEDED, scaling),
            absent("list10m.seed_seconds", f"seeding the {big} cluster", "s", large.NOT_SEEDED),
        ]
    startup_detail = f"median of {len(startups)}: " + ", ".join(f"{s:.2f}" for s in startups)
    figures += [
        throughput("live.service", "GET /health/live: service", runs["live.service"]),
        throughput("live.constant", "GET /health/live: bare FastAPI constant", runs["live.constant"]),
        ratio(
            "live.vs_constant",
            "liveness: service / bare FastAPI constant",
            paired_ratios(runs["live.service"], runs["live.constant"]),
            Goal(">=", 0.95, "x"),
        ),
        throughput("login.service", "POST /api/v1/auth/login: service (4 connections)", [login]),
        figure(
            "argon2.verify_ms",
            "argon2id verify, CPU",
            argon2_ms,
            "ms",
            f"{1000 / argon2_ms:.0f} logins/s per core",
            Goal("<=", 30, "ms"),
        ),
        figure(
            "startup.ready_s",
            "API process start to first 200 on /health/ready",
            statistics.median(startups),
            "s",
            startup_detail,
            Goal("<=", 1.5, "s"),
        ),
        figure("api.rss_mb", "API RSS after the run", rss_mb, "MB", goal=Goal("<=", 120, "MB")),
    ]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating service/baseline rounds")
    parser.add_argument("--spawns", type=int, default=5, help="API starts timed to their first ready 200")
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--owners", type=int, default=1_000)
    parser.add_argument("--previous", type=Path, help="a bench.json from an earlier run: its figures beside")
    args = parser.parse_args(argv)
    try:
        previous = read_previous(args.previous) if args.previous else None
        result = run(args.seconds, args.rounds, SeedSize(args.projects, args.owners), args.spawns)
    except (BenchError, stack.StackError, OSError, ValueError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    text = markdown(result, previous)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.md").write_text(text)
    (OUT / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
