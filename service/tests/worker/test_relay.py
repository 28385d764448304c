"""The relay in-process against a real receiver, on SQLite and PostgreSQL: delivery, retries,
dead-letter, the breaker, and the API staying fast while the receiver fails."""

from __future__ import annotations

import itertools
import statistics
import time

import httpx
import pytest
from pydantic import SecretStr

from app.outbox.liveness import Heartbeat
from app.outbox.webhook import InvalidSignature, verify_signature
from app.settings import Settings
from service.tests.builders import MakeUser, project_payload
from service.tests.worker.conftest import (
    add_events,
    metric,
    outbox_rows,
    running_relay,
    wait_for,
    worker_settings,
)
from testsupport.webhook_receiver import Receiver


async def test_a_created_project_is_delivered_to_the_receiver_with_its_event(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, receiver: Receiver
) -> None:
    member = await make_user()
    latencies = []
    async with running_relay(settings) as relay:
        for delivered in range(1, 6):
            response = await client.post(
                "/api/v1/projects", json=project_payload(name=f"Hermes {delivered}"), headers=member.headers
            )
            committed_at = time.monotonic()  # the outbox row is committed before the 201 is sent
            assert response.status_code == 201
            await wait_for(
                lambda n=delivered: metric(relay, "outbox_deliveries_total", outcome="delivered") == n
            )
            latencies.append(receiver.requests[-1].arrived - committed_at)
        # The gauge is refreshed after each batch is recorded, a moment after the counter.
        await wait_for(lambda: metric(relay, "outbox_events_pending") == 0)
    project = response.json()
    request = receiver.requests[-1]
    assert len(receiver.requests) == 5
    assert request.body["eventType"] == "project.created"
    assert request.body["data"] == {"projectId": project["id"], "ownerId": member.id, "name": "Hermes 5"}
    assert request.headers["idempotency-key"] == request.body["eventId"]
    row = (await outbox_rows(settings))[request.body["eventId"]]
    assert (row.status, row.attempts) == ("delivered", 1)
    print(
        f"\n[worker] 201 -> receiver latency (poll interval 20 ms): median "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms over 5 creates"
    )


async def test_with_a_signing_secret_the_receiver_can_verify_every_delivery(
    settings: Settings, receiver: Receiver
) -> None:
    secret = "signing-" + "k" * 40
    signed = settings.model_copy(update={"webhook_signing_secret": SecretStr(secret)})
    async with running_relay(signed):
        ids = await add_events(settings, 3)
        await wait_for(lambda: len(receiver.accepted) == 3)
    for request in receiver.requests:
        verify_signature(secret, request.headers, request.raw_body)  # as a receiver would, at its own now
        assert request.headers["webhook-id"] == request.body["eventId"] == request.event_id
        with pytest.raises(InvalidSignature, match="does not match"):
            verify_signature("another-" + secret, request.headers, request.raw_body)
    assert sorted(receiver.accepted) == sorted(ids)


async def test_transient_failures_are_retried_with_growing_backoff_then_dead_lettered(
    settings: Settings, receiver: Receiver
) -> None:
    receiver.status = 500
    failing = settings.model_copy(
        update={
            "outbox_max_attempts": 4,
            "outbox_backoff_base_seconds": 0.2,
            "outbox_backoff_max_seconds": 0.8,
        }
    )
    # rand=1: every backoff at its ceiling, so the growth is observable: 0.2, 0.4, 0.8 s.
    async with running_relay(failing, rand=lambda: 1.0) as relay:
        [event_id] = await add_events(settings, 1)
        await wait_for(lambda: metric(relay, "outbox_events_dead_lettered") == 1)
        assert metric(relay, "outbox_deliveries_total", outcome="retried") == 3
        assert metric(relay, "outbox_deliveries_total", outcome="dead_lettered") == 1
        assert metric(relay, "outbox_deliveries_total", outcome="delivered") == 0
        assert metric(relay, "outbox_events_pending") == 0

    attempts = [r.arrived for r in receiver.requests]
    assert len(attempts) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    for gap, backoff in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert gap >= backoff - 0.01, gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps
    row = (await outbox_rows(settings))[event_id]
    assert (row.status, row.attempts) == ("dead", 4)
    assert row.last_error.startswith("gave up after 4 attempts: HTTP 500")
    print(f"\n[worker] retry gaps with backoff ceilings 0.2/0.4/0.8 s: {[round(g, 2) for g in gaps]} s")


async def test_the_api_stays_fast_while_the_receiver_fails(
    client: httpx.AsyncClient, make_user: MakeUser, settings: Settings, receiver: Receiver
) -> None:
    """Creating a project only writes the outbox row: it never waits for the receiver."""
    receiver.status, receiver.delay = 500, 1.0
    member = await make_user()
    async with running_relay(settings.model_copy(update={"outbox_max_attempts": 2})) as relay:
        await add_events(settings, 3)
        await wait_for(lambda: len(receiver.requests) >= 1)
        create_latencies = []
        for _ in range(10):
            started = time.perf_counter()
            response = await client.post("/api/v1/projects", json=project_payload(), headers=member.headers)
            create_latencies.append(time.perf_counter() - started)
            assert response.status_code == 201
        # Every event, including the new projects', ends up dead-lettered after 2 slow 500s.
        await wait_for(lambda: metric(relay, "outbox_events_dead_lettered") == 13, 30)
        assert metric(relay, "outbox_deliveries_total", outcome="retried") == 13
    # Only the worker ever called the receiver, and no create waited for its 1 s answers.
    assert {r.headers["user-agent"] for r in receiver.requests} == {"reference-service-worker/0.1.0"}
    assert max(create_latencies) < receiver.delay
    print(
        f"\n[worker] POST /projects while the receiver fails (500 after 1 s): "
        f"median {statistics.median(create_latencies) * 1000:.0f} ms, "
        f"max {max(create_latencies) * 1000:.0f} ms over {len(create_latencies)} creates"
    )


async def test_a_rejected_payload_is_dead_lettered_without_retries(
    settings: Settings, receiver: Receiver
) -> None:
    receiver.status = 422
    async with running_relay(settings) as relay:
        [event_id] = await add_events(settings, 1)
        await wait_for(lambda: metric(relay, "outbox_events_dead_lettered") == 1)
    row = (await outbox_rows(settings))[event_id]
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error.startswith("rejected by the receiver: HTTP 422")
    assert len(receiver.requests) == 1


async def test_the_breaker_opens_stops_calling_the_receiver_then_half_opens_and_recovers(
    database_url: str, receiver: Receiver
) -> None:
    settings = worker_settings(
        database_url,
        receiver,
        circuit_breaker_failure_threshold=2,
        circuit_breaker_reset_seconds=1.0,
        outbox_max_attempts=10,
        outbox_backoff_max_seconds=0.05,
    )
    receiver.status = 503
    async with running_relay(settings) as relay:
        ids = await add_events(settings, 3)
        await wait_for(lambda: metric(relay, "circuit_breaker_state", name="webhook") == 2)
        calls_when_opened = len(receiver.requests)
        assert calls_when_opened >= 2
        receiver.status = 200
        await wait_for(lambda: len(receiver.accepted) == 3, 15)
        assert metric(relay, "circuit_breaker_state", name="webhook") == 0
    # While open (1 s) nothing went out; the half-open probe was one request, answered before the rest.
    probe = receiver.requests[calls_when_opened]
    assert probe.arrived - receiver.requests[calls_when_opened - 1].arrived >= 0.9
    rest = receiver.requests[calls_when_opened + 1 :]
    assert all(r.arrived > probe.arrived for r in rest)
    rows = await outbox_rows(settings)
    assert {rows[i].status for i in ids} == {"delivered"}
    # Refused calls gave their attempt back: no event burned attempts while the breaker was open.
    assert max(rows[i].attempts for i in ids) <= calls_when_opened + 1


async def test_events_are_delivered_in_batches_until_the_backlog_is_empty(
    settings: Settings, receiver: Receiver
) -> None:
    ids = await add_events(settings, 25)  # batch size 10: three claims, no waiting between full batches
    async with running_relay(settings) as relay:
        await wait_for(lambda: len(set(receiver.accepted)) == 25)
        await wait_for(lambda: metric(relay, "outbox_events_pending") == 0)
        assert metric(relay, "outbox_deliveries_total", outcome="delivered") == 25
    assert sorted(set(receiver.accepted)) == sorted(ids)


async def test_a_database_outage_is_logged_and_the_relay_keeps_polling(
    settings: Settings, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    broken = settings.model_copy(update={"database_url": "sqlite+aiosqlite:////nonexistent/dir/x.db"})
    async with running_relay(broken) as relay:
        await wait_for(lambda: caplog.text.count("outbox poll failed") >= 2)
        # The stall is visible: failures count up, the last successful poll stays "never".
        assert (metric(relay, "outbox_poll_failures_total") or 0) >= 2
        assert metric(relay, "outbox_last_poll_success_timestamp_seconds") == 0
    assert receiver.requests == []


async def test_a_successful_poll_stamps_its_time_and_beats_the_heartbeat(
    settings: Settings, receiver: Receiver
) -> None:
    ticks = itertools.count()

    def clock() -> float:
        return float(next(ticks))

    heartbeat = Heartbeat(stale_after_seconds=5, clock=clock)
    before = time.time()
    async with running_relay(settings, heartbeat=heartbeat) as relay:
        await wait_for(lambda: (metric(relay, "outbox_last_poll_success_timestamp_seconds") or 0) > 0)
        stamped = metric(relay, "outbox_last_poll_success_timestamp_seconds")
    assert stamped is not None and before <= stamped <= time.time()
    assert metric(relay, "outbox_poll_failures_total") == 0
    assert next(ticks) >= 2, "the loop beat the heartbeat at least once"
