"""Misbehaving HTTP clients on raw sockets: slow heads, slow bodies, oversized heads.

Each runs until `stop` is set and says what happened to it, so a scenario can show the
server's answer next to the other clients' latency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class AbuseReport:
    connections: int = 0
    # For oversized heads: the status line's code, or "closed" / "reset" / "timeout".
    answers: Counter[str] = field(default_factory=Counter)
    closed_by_server: int = 0  # slow clients the server hung up on


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def slow_head(port: int, stop: asyncio.Event, report: AbuseReport, interval: float = 0.5) -> None:
    """Slowloris: a request head that never ends, one header line every `interval` seconds."""
    reader, writer = await _open(port)
    report.connections += 1
    try:
        writer.write(b"GET /api/v1/projects HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        while not stop.is_set():
            writer.write(b"X-Slow: 1\r\n")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if reader.at_eof():
                report.closed_by_server += 1
                return
    except OSError:
        report.closed_by_server += 1
    finally:
        writer.close()


async def slow_body(port: int, stop: asyncio.Event, report: AbuseReport, interval: float = 0.5) -> None:
    """A complete head announcing a body that arrives one byte every `interval` seconds."""
    reader, writer = await _open(port)
    report.connections += 1
    try:
        writer.write(
            b"POST /api/v1/projects HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000\r\n\r\n{"
        )
        while not stop.is_set():
            writer.write(b" ")
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if reader.at_eof():
                report.closed_by_server += 1
                return
    except OSError:
        report.closed_by_server += 1
    finally:
        writer.close()


async def oversized_heads(port: int, size: int, stop: asyncio.Event, report: AbuseReport) -> None:
    """One request after another, each with a `size`-byte header, until `stop`."""
    head = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    while not stop.is_set():
        report.connections += 1
        try:
            reader, writer = await _open(port)
        except OSError:
            report.answers["refused"] += 1
            continue
        try:
            writer.write(head)
            with contextlib.suppress(OSError):
                await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 10)
            report.answers[status.split(b" ")[1].decode() if status.startswith(b"HTTP/") else "closed"] += 1
        except TimeoutError:
            report.answers["timeout"] += 1
        except OSError:
            report.answers["reset"] += 1
        finally:
            writer.close()
