"""Event-loop lag: how late the loop runs a timer.

One process serves every request on one event loop, so CPU-bound work or a blocking call
anywhere delays all requests by the same amount. A task sleeps ``interval`` seconds in a
loop and records how much later than asked it woke up (``event_loop_lag_seconds``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

LAG_SAMPLE_INTERVAL_SECONDS = 0.5


async def measure_event_loop_lag(
    observe: Callable[[float], None], interval: float = LAG_SAMPLE_INTERVAL_SECONDS
) -> None:
    """Observe the loop's lag every ``interval`` seconds until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - asked))
