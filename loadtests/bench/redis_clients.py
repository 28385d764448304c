"""``make bench-redis``: which Redis client should run the rate limiter's script, by measurement.

On uvloop, against a real redis-server on a free port (pinned to core 0; each client's process
to core 1), ``--tasks`` concurrent tasks each call the rate limiter's own moving-window script
(``MOVING_WINDOW_SCRIPT``, imported) by EVALSHA, one key per task, for ``--seconds``; every
client once per round, ``--rounds`` alternating rounds, each in a fresh process. Per client:
calls/s and the client process's CPU time per call (all its threads: valkey-glide's core is
Rust threads), each side's median round, and the median of the round-by-round ratios to
``--reference``. A difference is within noise when it is no larger than the reference's own
spread across its rounds.

Prints one table and writes ``reports/bench/redis-clients.{md,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis
import redis.asyncio
import uvloop

from app.persistence.redis import PipelinedRedis  # goes when the hand-written client goes
from app.ratelimit.limiter import MOVING_WINDOW_SCRIPT
from kit.paths import ROOT
from loadtests import stack
from testsupport.servers import redis_server

OUT = ROOT / "reports" / "bench"
SHA = hashlib.sha1(MOVING_WINDOW_SCRIPT.encode(), usedforsecurity=False).hexdigest()
# Limits no task reaches: every call takes the counting path (LINDEX, LPUSH, LTRIM, EXPIRE).
UNREACHED = [1_000_000, 60]

Call = Callable[[list[str], list[int]], Awaitable[int]]  # (KEYS, ARGV) -> the script's answer
Client = Callable[[str], contextlib.AbstractAsyncContextManager[Call]]


class _Executing(Protocol):
    def execute(self, *args: str | int) -> Awaitable[Any]: ...
    def close(self) -> Awaitable[None]: ...


@contextlib.asynccontextmanager
async def redis_py(url: str) -> AsyncIterator[Call]:
    client = redis.asyncio.Redis.from_url(url)  # hiredis parses replies when installed

    async def call(keys: list[str], args: list[int]) -> int:
        return int(await client.evalsha(SHA, len(keys), *keys, *args))

    try:
        yield call
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def coredis_client(url: str) -> AsyncIterator[Call]:
    import coredis

    async with coredis.Redis.from_url(url) as client:

        async def call(keys: list[str], args: list[int]) -> int:
            return int(await client.evalsha(SHA, keys=keys, args=args))  # type: ignore[arg-type]

        yield call


@contextlib.asynccontextmanager
async def valkey_glide(url: str) -> AsyncIterator[Call]:
    from glide import GlideClient, GlideClientConfiguration, NodeAddress, Script

    parts = urlsplit(url)
    client = await GlideClient.create(
        # Its default request timeout (250 ms) fails calls on a busy machine; the others have none.
        GlideClientConfiguration(
            [NodeAddress(parts.hostname or "127.0.0.1", parts.port or 6379)], request_timeout=10_000
        )
    )
    script = Script(MOVING_WINDOW_SCRIPT)  # type: ignore[no-untyped-call]  # invoke_script: EVALSHA, SCRIPT LOAD on NOSCRIPT

    async def call(keys: list[str], args: list[int]) -> int:
        answer = await client.invoke_script(script, keys=list(keys), args=[str(a) for a in args])
        return int(answer)

    try:
        yield call
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def executing(client: _Executing) -> AsyncIterator[Call]:
    """A client with ``execute(*command)`` and ``close()``."""

    async def call(keys: list[str], args: list[int]) -> int:
        return int(await client.execute("EVALSHA", SHA, len(keys), *keys, *args))

    try:
        yield call
    finally:
        await client.close()


CLIENTS: dict[str, Client] = {
    "redis-py asyncio (hiredis)": redis_py,
    "coredis": coredis_client,
    "valkey-glide": valkey_glide,
    "PipelinedRedis (hand-written)": lambda url: executing(PipelinedRedis(url)),
}


def load_script(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        if client.script_load(MOVING_WINDOW_SCRIPT) != SHA:
            raise RuntimeError("SCRIPT LOAD answered another SHA1")


async def measure(client: Client, url: str, seconds: float, tasks: int) -> dict[str, float]:
    """Calls/s and CPU µs per call of ``tasks`` tasks calling the script for ``seconds``."""
    async with client(url) as call:
        keys = [[f"ratelimit:bench:{task}"] for task in range(tasks)]
        await asyncio.gather(*(call(k, UNREACHED) for k in keys))  # connections open, script cached
        calls, running = 0, True

        async def loop(k: list[str]) -> None:
            nonlocal calls
            while running:
                await call(k, UNREACHED)
                calls += 1

        cpu, wall = time.process_time(), time.perf_counter()
        workers = [asyncio.create_task(loop(k)) for k in keys]
        await asyncio.sleep(seconds)
        running = False
        await asyncio.gather(*workers)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"calls": calls, "calls_per_s": calls / wall, "cpu_us_per_call": cpu / calls * 1e6}


def measure_in_a_process(name: str, url: str, seconds: float, tasks: int) -> dict[str, Any]:
    argv = [*stack.pinning(1), sys.executable, "-m", "loadtests.bench.redis_clients", "--measure", name]
    argv += ["--url", url, "--seconds", str(seconds), "--tasks", str(tasks)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exited with no message"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the table (pure: tested in tests/loadtests/test_redis_clients.py) ----------------------


def spread(values: Sequence[float]) -> float:
    """Round-to-round spread of one side against itself: (max - min) / median."""
    return (max(values) - min(values)) / statistics.median(values)


def compare(values: Sequence[float], reference: Sequence[float]) -> tuple[float, bool]:
    """The median of the paired ratios, and whether it is within the reference's own noise."""
    ratio = statistics.median(v / r for v, r in zip(values, reference, strict=True))
    return ratio, abs(ratio - 1) <= spread(reference)


def table(rounds: Mapping[str, Sequence[Mapping[str, Any]]], reference: str) -> str:
    lines = [
        f"| client | calls/s | CPU µs/call | calls/s vs {reference} | CPU/call vs {reference} |",
        "|---|--:|--:|--:|--:|",
    ]
    base = rounds.get(reference, [])
    for name, runs in rounds.items():
        failed = next((run["error"] for run in runs if "error" in run), None)
        if failed:
            lines.append(f"| {name} | unavailable: {failed} | | | |")
            continue
        rates = [run["calls_per_s"] for run in runs]
        cpus = [run["cpu_us_per_call"] for run in runs]
        cells = [name, f"{statistics.median(rates):.0f}", f"{statistics.median(cpus):.1f}"]
        if name == reference or not base or any("error" in run for run in base):
            cells += ["", ""]
        else:
            for mine, theirs in (
                (rates, [r["calls_per_s"] for r in base]),
                (cpus, [r["cpu_us_per_call"] for r in base]),
            ):
                ratio, quiet = compare(mine, theirs)
                cells.append(
                    f"{ratio:.2f}x ({'within noise' if quiet else 'beyond noise'} ±{spread(theirs):.0%})"
                )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench.redis_clients", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=32, help="concurrent callers")
    parser.add_argument("--reference", default="PipelinedRedis (hand-written)", choices=list(CLIENTS))
    parser.add_argument("--measure", choices=list(CLIENTS), help=argparse.SUPPRESS)  # one client's process
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(uvloop.run(measure(CLIENTS[args.measure], args.url, args.seconds, args.tasks))))
        return 0
    load = os.getloadavg()
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in CLIENTS}
    with redis_server() as server:
        if (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(server.process.pid, {0})
        load_script(server.url)
        for _ in range(args.rounds):
            for name in CLIENTS:
                with redis.Redis.from_url(server.url) as admin:
                    admin.flushdb()  # the script stays cached; the lists go
                rounds[name].append(measure_in_a_process(name, server.url, args.seconds, args.tasks))
    header = (
        f"{os.cpu_count()} CPUs, load average {' / '.join(f'{v:.2f}' for v in load)} before and "
        f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())} after; {args.tasks} tasks, "
        f"{args.rounds} alternating rounds of {args.seconds} s per client, uvloop.\n\n"
    )
    text = header + table(rounds, args.reference)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "redis-clients.md").write_text(text)
    (OUT / "redis-clients.json").write_text(
        json.dumps({"rounds": rounds, "tasks": args.tasks}, indent=2) + "\n"
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
