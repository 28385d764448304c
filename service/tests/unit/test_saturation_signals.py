"""Event-loop lag and database-pool wait: the saturation signals the dashboards plot."""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import CollectorRegistry

from app.observability.loop_lag import measure_event_loop_lag
from app.observability.metrics import HttpMetrics
from app.persistence.database import Database
from service.tests.builders import make_settings


async def test_a_blocked_loop_shows_as_lag() -> None:
    lags: list[float] = []
    task = asyncio.create_task(measure_event_loop_lag(lags.append, interval=0.05))
    try:
        await asyncio.sleep(0.12)  # a couple of idle samples
        time.sleep(0.3)
        await asyncio.sleep(0.12)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(lags) >= 3
    assert min(lags) < 0.05, "an idle loop is on time"
    assert max(lags) >= 0.25, "the blocking call delayed the timer by about its length"


async def test_waiting_for_a_pooled_connection_is_observed(postgres_url: str) -> None:
    database = Database(make_settings(postgres_url, db_pool_size=1, db_max_overflow=0))
    metrics = HttpMetrics(CollectorRegistry(), database.engine)
    database.observe_checkout_wait(metrics.db_pool_wait.observe)
    try:
        holder = database.connect()
        await holder.__aenter__()

        async def release_later() -> None:
            await asyncio.sleep(0.3)
            await holder.__aexit__(None, None, None)

        releasing = asyncio.create_task(release_later())
        async with database.connect():  # waits for the only connection
            pass
        await releasing
    finally:
        await database.dispose()
    samples = {
        s.name: s for s in metrics.db_pool_wait.collect()[0].samples if s.name.endswith(("_count", "_sum"))
    }
    assert samples["db_pool_checkout_wait_seconds_count"].value == 2
    assert samples["db_pool_checkout_wait_seconds_sum"].value >= 0.25
