"""How busy the machine was with *other* work while a load test ran.

On a shared runner, neighbours that take CPU slow the service and the load generator down, and
an absolute latency gate then measures the neighbours. :class:`CpuMeter` measures the CPU the
whole machine spent (user, system, steal, ...) minus what this process and everything it started
spent (the API, its worker, PostgreSQL, Redis, Locust), as an average number of cores. The
gate calls a run with too much foreign CPU inconclusive instead of judging it.
"""

from __future__ import annotations

import contextlib
import time
from types import TracebackType

import psutil  # type: ignore[import-untyped]


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _own_seconds() -> float:
    """CPU of this process and its descendants, including children that already exited."""
    me = psutil.Process()
    processes = [me]
    with contextlib.suppress(psutil.Error):  # the process table changed under us: count what we have
        processes += me.children(recursive=True)
    total = 0.0
    for process in processes:
        try:
            t = process.cpu_times()
        except psutil.Error:  # exited between listing and reading: its time is in its parent's
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return float(total)


class CpuMeter:
    """``with CpuMeter() as meter: ...`` then ``meter.foreign_cores``."""

    def __init__(self) -> None:
        self.foreign_cores: float | None = None
        self.elapsed = 0.0
        self.cores = psutil.cpu_count() or 1

    def __enter__(self) -> CpuMeter:
        self._start = (time.monotonic(), _machine_busy_seconds(), _own_seconds())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> float:
        """Average cores used by processes outside this run since ``__enter__``."""
        wall, busy, own = self._start
        self.elapsed = elapsed = time.monotonic() - wall
        foreign = (_machine_busy_seconds() - busy) - (_own_seconds() - own)
        self.foreign_cores = max(0.0, foreign / elapsed) if elapsed > 0 else 0.0
        return self.foreign_cores
