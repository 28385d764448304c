"""POST one outbox event to the webhook receiver and classify the answer.

Every call is bounded: httpx timeouts per phase (connect/read/write/pool) plus one
overall deadline, so a receiver that trickles bytes cannot hold a lease forever.
The circuit breaker sits in front: while it is open no request goes out.

Classification decides what the relay does next:
- 2xx: delivered.
- timeouts, connection errors, 5xx, 408, 425, 429: transient; retried with backoff.
  Retrying a POST is safe here because the receiver de-duplicates by the event id,
  sent as `Idempotency-Key`, `X-Event-ID` and `Webhook-Id` (the same id on every attempt).
- any other 3xx/4xx: permanent. The receiver understood us and refused this payload;
  sending the same bytes again cannot succeed, so the event is dead-lettered at once
  for a human decision (fix, then `python -m app.worker replay-dead`).
Only transient failures count against the breaker: a 4xx proves the receiver is up.

Signatures (when WEBHOOK_SIGNING_SECRET is set), Standard Webhooks (a timestamped HMAC like Stripe's):
  Webhook-Id: <eventId>  (sent unsigned too)
  Webhook-Timestamp: <unix seconds when this attempt was sent>
  Webhook-Signature: v1,<base64 HMAC-SHA256 of "<Webhook-Id>.<Webhook-Timestamp>.<raw body>">
keyed with the secret's UTF-8 bytes (used as is, not base64-decoded like a `whsec_` secret).
The body is serialized once and those exact bytes are signed and sent. Each attempt is signed
afresh, so a retry hours later still carries a current timestamp. A receiver checks the HMAC of
the raw bytes before parsing them, and refuses stale timestamps so a captured request cannot be
replayed later: `verify_signature()` below does both. Webhook-Signature may carry several
space-separated signatures (the spec's way to roll a secret); one match is enough.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import orjson

from app.kernel.circuit_breaker import CircuitBreaker

TRANSIENT_STATUSES = frozenset({408, 425, 429})
# Stored in outbox_events.last_error; enough to diagnose, short enough for a psql listing.
MAX_ERROR_LENGTH = 500

SIGNATURE_VERSION = "v1"
ID_HEADER = "Webhook-Id"
TIMESTAMP_HEADER = "Webhook-Timestamp"
SIGNATURE_HEADER = "Webhook-Signature"
# How far a signed timestamp may be from the receiver's clock (either way), as Standard Webhooks.
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The request is not signed with the receiver's secret, or not recently: refuse it."""


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The Webhook-Signature value for these exact body bytes."""
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return if the request is genuine and recent; raise InvalidSignature saying why not.

    `body` must be the raw bytes received, before any JSON parsing. Header names match in any case.
    """
    by_name = {name.lower(): value for name, value in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if h.lower() not in by_name]
    if missing:
        raise InvalidSignature(f"missing header(s): {', '.join(missing)}")
    try:
        timestamp = int(by_name[TIMESTAMP_HEADER.lower()])
    except ValueError:
        raise InvalidSignature(f"{TIMESTAMP_HEADER} is not unix seconds") from None
    skew = (time.time() if now is None else now) - timestamp
    if abs(skew) > tolerance_seconds:
        raise InvalidSignature(
            f"{TIMESTAMP_HEADER} is {skew:+.0f} s from now (tolerance {tolerance_seconds:g} s)"
        )
    expected = sign(secret, by_name[ID_HEADER.lower()], timestamp, body).encode()
    offered = by_name[SIGNATURE_HEADER.lower()].split()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in offered):
        raise InvalidSignature("signature does not match the body and secret")


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    # The breaker refused the call: nothing was sent.
    NOT_ATTEMPTED = "not_attempted"


@dataclass(frozen=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    error: str | None = None


class WebhookSender:
    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float,
        breaker: CircuitBreaker,
        user_agent: str,
        signing_secret: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._deadline = timeout_seconds
        self.breaker = breaker
        self._signing_secret = signing_secret
        self._clock = clock
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            # Redirects would re-POST to a URL nobody configured: treat them as a misconfiguration.
            follow_redirects=False,
            headers={"User-Agent": user_agent},
            transport=transport,
        )

    async def send(self, payload: dict[str, Any]) -> DeliveryResult:
        if not self.breaker.allow():
            return DeliveryResult(DeliveryOutcome.NOT_ATTEMPTED, f"circuit breaker {self.breaker.name} open")
        result = await self._post(payload)
        if result.outcome is DeliveryOutcome.TRANSIENT:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        return result

    async def _post(self, payload: dict[str, Any]) -> DeliveryResult:
        event_id = str(payload.get("eventId", ""))
        body = orjson.dumps(payload)  # once: the signature covers exactly the bytes sent
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": event_id,
            "X-Event-ID": event_id,
            "X-Event-Type": str(payload.get("eventType", "")),
            ID_HEADER: event_id,
        }
        if self._signing_secret is not None:
            timestamp = int(self._clock())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(self._signing_secret, event_id, timestamp, body)
        try:
            async with asyncio.timeout(self._deadline):
                response = await self._client.post(self._url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            return _failure(DeliveryOutcome.TRANSIENT, f"timeout after {self._deadline:g}s")
        except httpx.TransportError as exc:
            return _failure(DeliveryOutcome.TRANSIENT, f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult(DeliveryOutcome.DELIVERED)
        outcome = (
            DeliveryOutcome.TRANSIENT
            if status >= 500 or status in TRANSIENT_STATUSES
            else DeliveryOutcome.PERMANENT
        )
        return _failure(outcome, f"HTTP {status}: {response.text[:200]}")

    async def aclose(self) -> None:
        await self._client.aclose()


def _failure(outcome: DeliveryOutcome, error: str) -> DeliveryResult:
    return DeliveryResult(outcome, error[:MAX_ERROR_LENGTH])
