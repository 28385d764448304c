"""PostgreSQL SIGKILLed under load, then restarted: no acknowledged write lost, no internal detail in
any 5xx, and the API and the worker recover on their own (same processes, no restart)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.chaos.harness import (
    Figures,
    Profile,
    leaky_5xx,
    migrated_stack,
    report,
    settle_events,
    start_load,
    stored_project_ids,
)
from testsupport.load import Balancer
from testsupport.servers import postgres_server

pytestmark = pytest.mark.slow


async def test_postgres_killed_and_restarted_loses_no_acknowledged_write(
    profile: Profile, tmp_path: Path
) -> None:
    # synchronous_commit=on: a 201 means the commit is in the WAL, as in production.
    with postgres_server(durable_commits=True) as postgres:
        postgres.psql('CREATE DATABASE "app"')
        url = postgres.url("app")
        async with migrated_stack(url, tmp_path, profile.users) as stack:
            balancer = Balancer([stack.api.base_url])
            load = start_load(balancer, stack.tokens, profile)

            await asyncio.sleep(profile.before_seconds)
            killed_at = time.monotonic()
            await asyncio.to_thread(postgres.kill)
            await asyncio.sleep(profile.fault_seconds)
            restarted_at = time.monotonic()
            await asyncio.to_thread(postgres.start_again)  # crash recovery replays the WAL
            result = await load.finish(profile.after_seconds)

            account = await settle_events(stack.receiver, url, result.acknowledged_writes)
            stored = await stored_project_ids(url)
            api_restarts, worker_restarts = stack.api.starts - 1, stack.worker.starts - 1
            api_alive, worker_alive = stack.api.running(), stack.worker.running()
            api_log = stack.api.log_records()

    lost_writes = sorted(set(result.acknowledged_writes) - stored)
    detected_at = balancer.first_probe(killed_at, ready=False)
    recovered_at = result.first(restarted_at, ok=True, kinds=("create",))
    failed_during = [o for o in result.failed if killed_at <= o.ended]
    report(
        Figures(
            "PostgreSQL SIGKILL + restart",
            result.sent,
            len(result.failed),
            len(lost_writes),
            len(account.lost),
            account.duplicated,
            None if detected_at is None else detected_at - killed_at,
            None if recovered_at is None else recovered_at - restarted_at,
            f"{len(result.acknowledged_writes)} writes acknowledged; 5xx only while the database was down",
        )
    )

    assert lost_writes == [], "an acknowledged create is missing after the restart"
    assert account.lost == [], "an acknowledged create's event was never delivered"
    assert leaky_5xx(result.outcomes) == []
    # A database outage is the client's cue to retry: 503 + Retry-After, and the keep-alive
    # connection survives it (an unhandled 500 used to reset the client's next request on it).
    assert {(o.status, o.error) for o in result.failed} == {(503, None)}
    assert failed_during, "the outage must be visible to clients (or the fault was not injected)"
    assert all(o.started < restarted_at + 5 for o in result.failed), "failures must stop after recovery"
    assert detected_at is not None, "readiness never reported the database down"
    assert recovered_at is not None, "no write succeeded after PostgreSQL came back"
    assert api_alive and worker_alive and api_restarts == worker_restarts == 0
    assert not [r for r in api_log if r.get("level") == "critical"]
