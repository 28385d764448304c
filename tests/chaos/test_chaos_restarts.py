"""Process deaths under load, as a rollout or an eviction causes them:

1. the outbox worker SIGKILLed with a batch in flight and started again (as kubelet does): its
   leased events are claimed again once the lease runs out, nothing is lost, redeliveries carry
   the same event id;
2. one of two API processes SIGTERMed behind a readiness-driven balancer, then replaced: it turns
   unready, serves what it accepted, exits, and no accepted request fails.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import pytest

from tests.chaos.harness import (
    SHUTDOWN_DELAY_SECONDS,
    WORKER_SETTINGS,
    Figures,
    Profile,
    Stack,
    leaky_5xx,
    outbox_status,
    report,
    settle_events,
    start_load,
)
from testsupport.load import Balancer

pytestmark = pytest.mark.slow

RECEIVER_DELAY = 0.3  # each delivery takes this long, so a batch is in flight most of the time
LEASE = float(WORKER_SETTINGS["OUTBOX_LEASE_SECONDS"])


async def until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


async def test_worker_sigkill_and_api_sigterm_under_load(profile: Profile, shared_stack: Stack) -> None:
    stack = shared_stack
    receiver = stack.receiver
    receiver.delay = RECEIVER_DELAY
    first = stack.apis[0]
    balancer = Balancer([api.base_url for api in stack.apis], route_by_readiness=True)
    load = start_load(balancer, stack.tokens, profile)
    await asyncio.sleep(profile.before_seconds)

    # 1. The worker dies with deliveries in flight, and is started again (as kubelet does).
    await until(lambda: len(receiver.requests) > len(receiver.accepted), timeout=10)
    in_flight = set(receiver.event_ids()) - set(receiver.accepted)
    killed_at = time.monotonic()
    stack.worker.kill()
    await asyncio.to_thread(stack.worker.start_again)
    while True:  # the restarted worker claims them again once their lease ran out, and delivers them
        rows = await outbox_status(stack.database_url, in_flight)
        if {status for status, _ in rows.values()} == {"delivered"}:
            break
        assert time.monotonic() - killed_at < LEASE + 60, rows
        await asyncio.sleep(0.05)
    redelivered_at = time.monotonic()
    worker_writes = len([o for o in load.load.outcomes if o.project_id])
    await asyncio.sleep(max(0.0, killed_at + profile.fault_seconds - time.monotonic()))

    # 2. A rolling restart of one API process under load.
    sigterm_at = time.monotonic()
    first.signal(signal.SIGTERM)
    exit_status = await asyncio.to_thread(first.wait, SHUTDOWN_DELAY_SECONDS + 15)
    exited_at = time.monotonic()
    await asyncio.to_thread(first.start_again)
    replaced_at = time.monotonic()
    result = await load.finish(profile.after_seconds)
    account = await settle_events(
        receiver, stack.database_url, result.acknowledged_writes, timeout=LEASE + 30
    )

    unready_at = next(
        (
            at
            for at, backend, status in balancer.history
            if at >= sigterm_at and backend == first.base_url and status != 200
        ),
        None,
    )
    back_at = next(
        (
            at
            for at, backend, status in balancer.history
            if at >= replaced_at and backend == first.base_url and status == 200
        ),
        None,
    )
    during_worker = [o for o in result.outcomes if killed_at <= o.started < sigterm_at]
    during_api = [o for o in result.outcomes if o.started >= sigterm_at]
    report(
        Figures(
            "worker SIGKILL mid-batch",
            len(during_worker),
            len([o for o in during_worker if o.failed]),
            0,
            len(account.lost),
            account.duplicated,
            None,
            redelivered_at - killed_at,
            f"{len(in_flight)} events in flight at the kill, claimed again after the {LEASE:g} s lease; "
            f"{worker_writes} writes acknowledged by then",
        )
    )
    report(
        Figures(
            "API SIGTERM (1 of 2) + replacement",
            len(during_api),
            len([o for o in during_api if o.failed]),
            0,
            len(account.lost),
            account.duplicated,
            None if unready_at is None else unready_at - sigterm_at,
            None if back_at is None else back_at - sigterm_at,
            f"exit {exit_status} after {exited_at - sigterm_at:.2f} s; "
            f"{sum(o.refused for o in during_api)} connects refused and retried on the other process",
        )
    )

    # First: the balancer saw the process unready while it still served (else the machine was too
    # slow for this scenario's 2 s shutdown delay, and a failed request below says nothing).
    assert unready_at is not None and unready_at - sigterm_at < SHUTDOWN_DELAY_SECONDS
    assert in_flight, "the worker must die with deliveries in flight"
    assert {attempts for _, attempts in rows.values()} == {2}, "claimed again after the lease, not before"
    assert result.failed == [], "no accepted request may fail"
    assert leaky_5xx(result.outcomes) == []
    assert account.lost == [], "no event may be lost"
    assert exit_status == 0
    assert back_at is not None
    assert during_api, "requests were routed during the rollout"
