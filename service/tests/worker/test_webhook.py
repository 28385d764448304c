"""The webhook sender against a real HTTP receiver: headers, timeouts and classification."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator

import pytest

from app.kernel.circuit_breaker import CircuitBreaker, CircuitState
from app.outbox.webhook import DeliveryOutcome, WebhookSender, verify_signature
from testsupport.servers import free_port
from testsupport.webhook_receiver import Receiver


def a_payload() -> dict[str, object]:
    return {"eventId": str(uuid.uuid4()), "eventType": "project.created", "data": {"name": "Apollo"}}


# Generous, so a loaded CI machine never turns an answer into a timeout; the timeout test sets its own.
TIMEOUT = 3.0


def a_breaker(threshold: int = 100) -> CircuitBreaker:
    return CircuitBreaker("webhook", failure_threshold=threshold, reset_seconds=60)


@pytest.fixture
async def sender(receiver: Receiver) -> AsyncIterator[WebhookSender]:
    webhook = WebhookSender(
        receiver.url, timeout_seconds=TIMEOUT, breaker=a_breaker(), user_agent="test-worker/1"
    )
    yield webhook
    await webhook.aclose()


async def test_posts_the_payload_with_the_event_id_for_deduplication(
    sender: WebhookSender, receiver: Receiver
) -> None:
    payload = a_payload()
    result = await sender.send(payload)
    assert result.outcome is DeliveryOutcome.DELIVERED
    [request] = receiver.requests
    assert request.body == payload
    assert request.headers["idempotency-key"] == request.headers["x-event-id"] == payload["eventId"]
    assert request.headers["x-event-type"] == "project.created"
    assert request.headers["user-agent"] == "test-worker/1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == payload["eventId"]
    assert "webhook-signature" not in request.headers  # no WEBHOOK_SIGNING_SECRET: unsigned
    assert "webhook-timestamp" not in request.headers


async def test_with_a_secret_each_attempt_is_signed_afresh_over_the_bytes_sent(receiver: Receiver) -> None:
    secret = "signing-" + "k" * 40
    receiver.status = 503  # the same event twice, as a retry would send it
    clock = itertools.count(1_700_000_000, 3600).__next__  # the retry an hour later
    webhook = WebhookSender(
        receiver.url,
        timeout_seconds=TIMEOUT,
        breaker=a_breaker(),
        user_agent="t",
        signing_secret=secret,
        clock=clock,
    )
    payload = a_payload()
    try:
        for _ in range(2):
            await webhook.send(payload)
    finally:
        await webhook.aclose()
    first, retry = receiver.requests
    assert [first.headers["webhook-timestamp"], retry.headers["webhook-timestamp"]] == [
        "1700000000",
        "1700003600",
    ]
    for request in (first, retry):
        verify_signature(
            secret, request.headers, request.raw_body, now=int(request.headers["webhook-timestamp"])
        )
        assert request.headers["webhook-signature"].startswith("v1,")
    assert first.raw_body == retry.raw_body


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (204, DeliveryOutcome.DELIVERED),
        (500, DeliveryOutcome.TRANSIENT),
        (503, DeliveryOutcome.TRANSIENT),
        (408, DeliveryOutcome.TRANSIENT),
        (429, DeliveryOutcome.TRANSIENT),
        (400, DeliveryOutcome.PERMANENT),
        (410, DeliveryOutcome.PERMANENT),
        (302, DeliveryOutcome.PERMANENT),
    ],
)
async def test_classifies_the_receivers_answer(
    sender: WebhookSender, receiver: Receiver, status: int, outcome: DeliveryOutcome
) -> None:
    receiver.status = status
    result = await sender.send(a_payload())
    assert result.outcome is outcome
    if outcome is not DeliveryOutcome.DELIVERED:
        assert result.error is not None
        assert result.error.startswith(f"HTTP {status}")


async def test_a_slow_receiver_is_a_transient_timeout(receiver: Receiver) -> None:
    receiver.delay = 1.5
    webhook = WebhookSender(receiver.url, timeout_seconds=0.3, breaker=a_breaker(), user_agent="t")
    try:
        result = await webhook.send(a_payload())
    finally:
        await webhook.aclose()
    assert result.outcome is DeliveryOutcome.TRANSIENT
    assert result.error == "timeout after 0.3s"


async def test_an_unreachable_receiver_is_transient() -> None:
    webhook = WebhookSender(
        f"http://127.0.0.1:{free_port()}/hook", timeout_seconds=TIMEOUT, breaker=a_breaker(), user_agent="t"
    )
    try:
        result = await webhook.send(a_payload())
    finally:
        await webhook.aclose()
    assert result.outcome is DeliveryOutcome.TRANSIENT
    assert result.error is not None
    assert "ConnectError" in result.error


async def test_transient_failures_open_the_breaker_and_then_nothing_is_sent(receiver: Receiver) -> None:
    receiver.status = 500
    webhook = WebhookSender(
        receiver.url, timeout_seconds=TIMEOUT, breaker=a_breaker(threshold=2), user_agent="t"
    )
    try:
        outcomes = [(await webhook.send(a_payload())).outcome for _ in range(4)]
    finally:
        await webhook.aclose()
    assert outcomes == [DeliveryOutcome.TRANSIENT] * 2 + [DeliveryOutcome.NOT_ATTEMPTED] * 2
    assert len(receiver.requests) == 2
    assert webhook.breaker.state is CircuitState.OPEN


async def test_a_permanent_rejection_does_not_count_against_the_breaker(receiver: Receiver) -> None:
    receiver.status = 422
    webhook = WebhookSender(
        receiver.url, timeout_seconds=TIMEOUT, breaker=a_breaker(threshold=1), user_agent="t"
    )
    try:
        for _ in range(3):
            assert (await webhook.send(a_payload())).outcome is DeliveryOutcome.PERMANENT
    finally:
        await webhook.aclose()
    assert webhook.breaker.state is CircuitState.CLOSED
