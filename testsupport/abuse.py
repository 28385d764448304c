"""Misbehaving HTTP clients on raw sockets: slow heads, slow bodies, oversized heads.

Each runs until a deadline (time.monotonic()) and says what happened to it, so a scenario can
show the server's answer next to the other clients' latency. `attack` runs them all on an event
loop of its own (call it in another process, so the attackers do not slow down the measuring client).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

ANSWER_SECONDS = 10  # an oversized head gets its answer (or its connection closed) within this
# Past the deadline, every client stops within this: a write the server never reads (a full send
# buffer) or a connect it never accepts must not keep `attack` and its process pool waiting.
STRAGGLER_SECONDS = 30


@dataclass
class AbuseReport:
    connections: int = 0
    # For oversized heads: the status line's code, or "closed" / "reset" / "timeout".
    answers: Counter[str] = field(default_factory=Counter)
    closed_by_server: int = 0  # slow clients the server hung up on


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def slow_head(port: int, until: float, report: AbuseReport, interval: float = 0.5) -> None:
    """Slowloris: a request head that never ends, one header line every `interval` seconds."""
    await _trickle(
        port,
        until,
        report,
        interval,
        b"GET /api/v1/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n",
        b"X-Slow: 1\r\n",
    )


async def slow_body(port: int, until: float, report: AbuseReport, interval: float = 0.5) -> None:
    """A complete head announcing a body that arrives one byte every `interval` seconds."""
    opening = (
        b"POST /api/v1/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000\r\n\r\n{"
    )
    await _trickle(port, until, report, interval, opening, b" ")


async def _trickle(
    port: int, until: float, report: AbuseReport, interval: float, opening: bytes, drip: bytes
) -> None:
    """One connection: ``opening``, then ``drip`` every `interval` seconds until the deadline or
    until the server closes it (counted in ``report``)."""
    reader, writer = await _open(port)
    report.connections += 1
    try:
        writer.write(opening)
        while time.monotonic() < until:
            writer.write(drip)
            await writer.drain()
            await asyncio.sleep(min(interval, max(0.0, until - time.monotonic())))
            if reader.at_eof():
                report.closed_by_server += 1
                return
    except OSError:
        report.closed_by_server += 1
    finally:
        writer.close()


async def oversized_heads(port: int, size: int, until: float, report: AbuseReport) -> None:
    """One request after another, each with a `size`-byte header, until the deadline."""
    head = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    while time.monotonic() < until:
        report.connections += 1
        try:
            reader, writer = await _open(port)
        except OSError:
            report.answers["refused"] += 1
            continue
        try:
            writer.write(head)
            with contextlib.suppress(OSError):  # TimeoutError too: the server stopped reading
                await asyncio.wait_for(writer.drain(), ANSWER_SECONDS)
            status = await asyncio.wait_for(reader.readline(), ANSWER_SECONDS)
            report.answers[status.split(b" ")[1].decode() if status.startswith(b"HTTP/") else "closed"] += 1
        except TimeoutError:
            report.answers["timeout"] += 1
        except OSError:
            report.answers["reset"] += 1
        finally:
            writer.close()


@dataclass(frozen=True)
class Attack:
    slow_heads: int
    slow_bodies: int
    big_head_clients: int
    big_head_bytes: int


def attack(port: int, plan: Attack, seconds: float) -> tuple[AbuseReport, AbuseReport]:
    """Run the plan against 127.0.0.1:`port` for `seconds` (blocking; picklable, for a process pool).

    Returns the slow clients' report and the oversized heads' report.
    """
    slow, big = AbuseReport(), AbuseReport()

    async def run() -> None:
        until = time.monotonic() + seconds
        clients = asyncio.gather(
            *(slow_head(port, until, slow) for _ in range(plan.slow_heads)),
            *(slow_body(port, until, slow) for _ in range(plan.slow_bodies)),
            *(oversized_heads(port, plan.big_head_bytes, until, big) for _ in range(plan.big_head_clients)),
        )
        await asyncio.wait_for(clients, seconds + STRAGGLER_SECONDS)

    asyncio.run(run())
    return slow, big
