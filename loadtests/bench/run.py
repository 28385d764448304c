"""``make bench``: the service with all middleware on against bare FastAPI baselines, side by side.

Every server runs alone on core 0 (``taskset -c 0``); the load tools run on core 1. PostgreSQL
floats (it needs a core too; on a 2-core machine it shares with whichever side waits on it).

* Capacity: wrk, closed loop, 1 thread x 32 connections for ``--seconds``; wrk's own Lua
  ``done()`` reports p50/p95/p99. The service and its baseline are up together and measured
  in alternation, ``--rounds`` times (service, baseline, service, ...): on a shared machine a
  burst of noise hits one ten-second run, not a whole side. The ratio is the median of the
  rounds' ratios (each pair measured seconds apart); the table shows each side's median run.
* Latency at a fixed 50 % of capacity: ``loadtests.bench.openloop`` (open loop, latencies from
  the scheduled start, so no coordinated omission).
* Login: argon2id CPU per verify, timed in-process with the service's hasher (``process_time``),
  plus wrk against POST /auth/login.
* Memory: the API process's RSS (psutil) after all its runs.

The service runs as in production (``LOG_LEVEL=INFO`` JSON access logs, metrics, request ids,
rate limiting via Redis with limits no client reaches, all middleware). Results go to stdout
and ``reports/bench/bench.{md,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg
import psutil  # type: ignore[import-untyped]

from kit.paths import LOADTESTS, ROOT
from loadtests import accounts, stack
from loadtests.seed import SeedSize, asyncpg_dsn
from testsupport.servers import free_port

OUT = ROOT / "reports" / "bench"
WRK_SCRIPT = LOADTESTS / "bench" / "wrk_report.lua"
UNLIMITED = "1000000/second"  # the limiter runs (Redis round trip included) but never rejects


class BenchError(RuntimeError):
    pass


@dataclass
class Row:
    endpoint: str
    implementation: str
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    fixed_rate_rps: float | None = None
    fixed_p95_ms: float | None = None
    ratio: float | None = None  # median of the rounds' service/baseline throughput ratios


def wrk(
    url: str, seconds: float, connections: int = 32, env: Mapping[str, str] | None = None
) -> dict[str, float]:
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


def open_loop(url: str, rate: float, seconds: float, headers: list[str]) -> dict[str, float]:
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


def _row(endpoint: str, implementation: str, figures: dict[str, float], ratio: float | None = None) -> Row:
    return Row(
        endpoint,
        implementation,
        figures["rps"],
        figures["p50_ms"],
        figures["p95_ms"],
        figures["p99_ms"],
        int(figures["errors"]),
        ratio=ratio,
    )


@dataclass
class Pairing:
    """One endpoint measured on the service and on its baseline in alternating rounds."""

    endpoint: str
    baseline: str
    service_runs: list[dict[str, float]]
    baseline_runs: list[dict[str, float]]

    @property
    def ratios(self) -> list[float]:
        return [s["rps"] / b["rps"] for s, b in zip(self.service_runs, self.baseline_runs, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def rows(self) -> tuple[Row, Row]:
        return (
            _row(self.endpoint, "service", _median_run(self.service_runs), self.ratio),
            _row(self.endpoint, self.baseline, _median_run(self.baseline_runs)),
        )


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median throughput (its own latencies with it, not mixed across runs)."""
    return sorted(runs, key=lambda run: run["rps"])[(len(runs) - 1) // 2]


def run(seconds: float, rounds: int, size: SeedSize) -> dict[str, object]:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: run `make bench-deps` (apt-get install wrk)")
    logs = OUT / "logs"
    with stack.backing_services(size) as backing:
        owner = asyncio.run(owner_id(backing.database_url))
        overrides = {
            "LOG_LEVEL": "INFO",
            # As in production (overlays set the environment's host): the Host check runs.
            "TRUSTED_HOSTS": stack.LOOPBACK,
            "RATE_LIMIT_ENABLED": "true",
            "RATE_LIMIT_READ": UNLIMITED,
            "RATE_LIMIT_WRITE": UNLIMITED,
            "RATE_LIMIT_LOGIN": UNLIMITED,
        }
        # All three servers share core 0; only the one under load uses it.
        with (
            stack.service(backing, logs, cpu=0, with_worker=False, overrides=overrides) as svc,
            bare_app("bare_constant", backing, logs) as constant_url,
            bare_app("bare_sqlalchemy", backing, logs) as sqlalchemy_url,
        ):
            token = login_token(svc.base_url)
            live: tuple[str, str, dict[str, str]] = (
                f"{svc.base_url}/health/live",
                f"{constant_url}/health/live",
                {},
            )
            lists = (
                f"{svc.base_url}/api/v1/projects?limit=20",
                f"{sqlalchemy_url}/projects?owner_id={owner}&limit=20",
                {"BENCH_TOKEN": token},
            )
            for service_url, baseline_url, env in (live, lists):  # warm-up: pools, caches
                wrk(service_url, 2, env=env)
                wrk(baseline_url, 2)
            liveness = Pairing("GET /health/live", "bare FastAPI constant", [], [])
            listing = Pairing("GET /api/v1/projects (20 of 100k)", "bare FastAPI + SQLAlchemy", [], [])
            for _ in range(rounds):
                for pairing, (service_url, baseline_url, env) in ((liveness, live), (listing, lists)):
                    pairing.service_runs.append(wrk(service_url, seconds, env=env))
                    pairing.baseline_runs.append(wrk(baseline_url, seconds))
            live_rows, list_rows = liveness.rows(), listing.rows()
            for row, url, headers in (
                (list_rows[0], lists[0], [f"Authorization: Bearer {token}"]),
                (list_rows[1], lists[1], []),
            ):
                fixed = open_loop(url, row.rps / 2, seconds, headers)
                row.fixed_rate_rps, row.fixed_p95_ms = fixed["achieved_rps"], fixed["p95_ms"]
            login_body = json.dumps({"email": accounts.owner_email(1), "password": accounts.password()})
            login = wrk(
                f"{svc.base_url}/api/v1/auth/login",
                seconds,
                connections=4,
                env={"BENCH_METHOD": "POST", "BENCH_BODY": login_body},
            )
            rss_mb = psutil.Process(svc.api.pid).memory_info().rss / 2**20
    rows = [
        live_rows[0],
        list_rows[0],
        _row("POST /api/v1/auth/login", "service", login),
        live_rows[1],
        list_rows[1],
    ]
    login_ms = argon2_cpu_ms()
    service_list = list_rows[0]
    goals = [
        ("list throughput >= 1.0x bare FastAPI + SQLAlchemy", f"{listing.ratio:.2f}x", listing.ratio >= 1.0),
        (
            "list p95 at 50 % of capacity < 20 ms",
            f"{service_list.fixed_p95_ms:.1f} ms",
            (service_list.fixed_p95_ms or 1e9) < 20,
        ),
        (
            "liveness throughput >= 0.8x bare FastAPI constant",
            f"{liveness.ratio:.2f}x",
            liveness.ratio >= 0.8,
        ),
        (
            "argon2id verify <= 30 ms CPU (30+ logins/s per core)",
            f"{login_ms:.1f} ms ({1000 / login_ms:.0f}/s per core)",
            login_ms <= 30,
        ),
        ("API RSS after the run < 150 MB", f"{rss_mb:.0f} MB", rss_mb < 150),
    ]
    return {
        "rows": [asdict(r) for r in rows],
        "round_ratios": {p.endpoint: [round(r, 3) for r in p.ratios] for p in (liveness, listing)},
        "goals": [{"goal": g, "measured": m, "met": ok} for g, m, ok in goals],
        "seconds": seconds,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "size": asdict(size),
    }


def markdown(result: dict[str, object]) -> str:
    rows = result["rows"]
    goals = result["goals"]
    assert isinstance(rows, list)
    assert isinstance(goals, list)
    lines = [
        "| endpoint | implementation | req/s | p50 ms | p95 ms | p99 ms | vs baseline | p95 ms at 50 % |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else ""
        fixed = (
            f"{r['fixed_p95_ms']:.1f} @ {r['fixed_rate_rps']:.0f}/s" if r["fixed_p95_ms"] is not None else ""
        )
        lines.append(
            f"| `{r['endpoint']}` | {r['implementation']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {ratio} | {fixed} |"
        )
    round_ratios = result.get("round_ratios", {})
    assert isinstance(round_ratios, dict)
    lines += [""] + [
        f"Rounds ({endpoint}): " + ", ".join(f"{ratio:.2f}x" for ratio in ratios)
        for endpoint, ratios in round_ratios.items()
    ]
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else 'NO'} |" for g in goals]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating service/baseline rounds")
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--owners", type=int, default=1_000)
    args = parser.parse_args(argv)
    try:
        result = run(args.seconds, args.rounds, SeedSize(args.projects, args.owners))
    except (BenchError, stack.StackError, OSError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    text = markdown(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.md").write_text(text)
    (OUT / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
