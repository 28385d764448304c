"""``make bench``: the service with all middleware on against bare FastAPI baselines, side by side.

Every server runs alone on core 0 (``taskset -c 0``); the load tools run on core 1. PostgreSQL
floats (it needs a core too; on a 2-core machine it shares with whichever side waits on it).

* Capacity: wrk, closed loop, 1 thread x 32 connections for ``--seconds``; wrk's own Lua
  ``done()`` reports p50/p95/p99.
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
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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


def wrk(url: str, seconds: float, connections: int = 32, **env: str) -> dict[str, float]:
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
    done = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)  # noqa: S603
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


def _row(endpoint: str, implementation: str, figures: dict[str, float]) -> Row:
    return Row(
        endpoint,
        implementation,
        figures["rps"],
        figures["p50_ms"],
        figures["p95_ms"],
        figures["p99_ms"],
        int(figures["errors"]),
    )


def run(seconds: float, size: SeedSize) -> dict[str, object]:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: run `make bench-deps` (apt-get install wrk)")
    rows: list[Row] = []
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
        with stack.service(backing, logs, cpu=0, with_worker=False, overrides=overrides) as svc:
            token = login_token(svc.base_url)
            list_url = f"{svc.base_url}/api/v1/projects?limit=20"
            wrk(list_url, 3, BENCH_TOKEN=token)  # warm-up: pool connections, caches
            rows.append(_row("GET /health/live", "service", wrk(f"{svc.base_url}/health/live", seconds)))
            service_list = _row(
                "GET /api/v1/projects (20 of 100k)", "service", wrk(list_url, seconds, BENCH_TOKEN=token)
            )
            fixed = open_loop(list_url, service_list.rps / 2, seconds, [f"Authorization: Bearer {token}"])
            service_list.fixed_rate_rps, service_list.fixed_p95_ms = fixed["achieved_rps"], fixed["p95_ms"]
            rows.append(service_list)
            login_body = json.dumps({"email": accounts.owner_email(1), "password": accounts.password()})
            rows.append(
                _row(
                    "POST /api/v1/auth/login",
                    "service",
                    wrk(
                        f"{svc.base_url}/api/v1/auth/login",
                        seconds,
                        connections=4,
                        BENCH_METHOD="POST",
                        BENCH_BODY=login_body,
                    ),
                )
            )
            rss_mb = psutil.Process(svc.api.pid).memory_info().rss / 2**20
        with bare_app("bare_constant", backing, logs) as url:
            wrk(f"{url}/health/live", 2)
            rows.append(_row("GET /health/live", "bare FastAPI constant", wrk(f"{url}/health/live", seconds)))
        with bare_app("bare_sqlalchemy", backing, logs) as url:
            bare_url = f"{url}/projects?owner_id={owner}&limit=20"
            wrk(bare_url, 3)
            bare_list = _row(
                "GET /api/v1/projects (20 of 100k)", "bare FastAPI + SQLAlchemy", wrk(bare_url, seconds)
            )
            fixed = open_loop(bare_url, bare_list.rps / 2, seconds, [])
            bare_list.fixed_rate_rps, bare_list.fixed_p95_ms = fixed["achieved_rps"], fixed["p95_ms"]
            rows.append(bare_list)
    login_ms = argon2_cpu_ms()
    by = {(r.endpoint, r.implementation): r for r in rows}
    list_ratio = service_list.rps / bare_list.rps
    live_ratio = (
        by[("GET /health/live", "service")].rps / by[("GET /health/live", "bare FastAPI constant")].rps
    )
    goals = [
        ("list throughput >= 1.0x bare FastAPI + SQLAlchemy", f"{list_ratio:.2f}x", list_ratio >= 1.0),
        (
            "list p95 at 50 % of capacity < 20 ms",
            f"{service_list.fixed_p95_ms:.1f} ms",
            (service_list.fixed_p95_ms or 1e9) < 20,
        ),
        ("liveness throughput >= 0.8x bare FastAPI constant", f"{live_ratio:.2f}x", live_ratio >= 0.8),
        (
            "argon2id verify <= 30 ms CPU (30+ logins/s per core)",
            f"{login_ms:.1f} ms ({1000 / login_ms:.0f}/s per core)",
            login_ms <= 30,
        ),
        ("API RSS after the run < 150 MB", f"{rss_mb:.0f} MB", rss_mb < 150),
    ]
    return {
        "rows": [asdict(r) for r in rows],
        "goals": [{"goal": g, "measured": m, "met": ok} for g, m, ok in goals],
        "seconds": seconds,
        "cpus": os.cpu_count(),
        "size": asdict(size),
    }


def markdown(result: dict[str, object]) -> str:
    rows = result["rows"]
    goals = result["goals"]
    assert isinstance(rows, list)
    assert isinstance(goals, list)
    baseline = {r["endpoint"]: r for r in rows if r["implementation"] != "service"}
    lines = [
        "| endpoint | implementation | req/s | p50 ms | p95 ms | p99 ms | vs baseline | p95 ms at 50 % |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        base = baseline.get(r["endpoint"])
        ratio = f"{r['rps'] / base['rps']:.2f}x" if base and base is not r else ""
        fixed = (
            f"{r['fixed_p95_ms']:.1f} @ {r['fixed_rate_rps']:.0f}/s" if r["fixed_p95_ms"] is not None else ""
        )
        lines.append(
            f"| `{r['endpoint']}` | {r['implementation']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {ratio} | {fixed} |"
        )
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {g['goal']} | {g['measured']} | {'yes' if g['met'] else 'NO'} |" for g in goals]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--owners", type=int, default=1_000)
    args = parser.parse_args(argv)
    try:
        result = run(args.seconds, SeedSize(args.projects, args.owners))
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
