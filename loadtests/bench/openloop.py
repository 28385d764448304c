"""A small open-loop HTTP/1.1 load generator: requests leave on a fixed schedule, whatever the
server does, and each latency counts from the request's *scheduled* start, so a stall shows up
in the percentiles instead of silently lowering the rate (coordinated omission). wrk2 does this
but is not packaged in Debian; this covers one GET endpoint over keep-alive connections.

``python -m loadtests.bench.openloop --url http://127.0.0.1:8000/x --rate 500 --duration 10``
prints one JSON line: sent, completed, errors, achieved rate and p50/p95/p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from urllib.parse import urlsplit

import uvloop


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> int:
        """Send one request, read the whole response; returns the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


async def run(
    url: str, rate: float, duration: float, connections: int, headers: list[str]
) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{h}\r\n" for h in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(*await asyncio.open_connection(host, port)))
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        connection = await pool.get()  # waiting for a free connection is part of the latency
        try:
            status = await connection.exchange(request)
            if status >= 400:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            connection = Connection(*await asyncio.open_connection(host, port))
        pool.put_nowait(connection)

    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    ordered = sorted(latencies)
    return {
        "sent": total,
        "completed": len(latencies),
        "errors": errors,
        "achieved_rps": len(latencies) / elapsed,
        "p50_ms": percentile(ordered, 0.5) * 1000,
        "p95_ms": percentile(ordered, 0.95) * 1000,
        "p99_ms": percentile(ordered, 0.99) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench.openloop", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    args = parser.parse_args(argv)
    if urlsplit(args.url).scheme != "http":
        parser.error("only plain http:// URLs (the benchmark runs on loopback)")
    result = uvloop.run(run(args.url, args.rate, args.duration, args.connections, args.header))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
