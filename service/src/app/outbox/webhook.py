"""POST one outbox event to the webhook receiver and classify the answer.

Every call is bounded: httpx timeouts per phase (connect/read/write/pool) plus one
overall deadline, so a receiver that trickles bytes cannot hold a lease forever.
The circuit breaker sits in front: while it is open no request goes out.

Classification decides what the relay does next:
- 2xx: delivered.
- timeouts, connection errors, 5xx, 408, 425, 429: transient; retried with backoff.
  Retrying a POST is safe here because the receiver de-duplicates by the event id,
  sent as `Idempotency-Key` and `X-Event-ID` (the same id on every attempt).
- any other 3xx/4xx: permanent. The receiver understood us and refused this payload;
  sending the same bytes again cannot succeed, so the event is dead-lettered at once
  for a human decision (fix, then `python -m app.worker replay-dead`).
Only transient failures count against the breaker: a 4xx proves the receiver is up.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from app.core.circuit_breaker import CircuitBreaker

TRANSIENT_STATUSES = frozenset({408, 425, 429})
# Stored in outbox_events.last_error; enough to diagnose, short enough for a psql listing.
MAX_ERROR_LENGTH = 500


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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._deadline = timeout_seconds
        self.breaker = breaker
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
        headers = {
            "Idempotency-Key": event_id,
            "X-Event-ID": event_id,
            "X-Event-Type": str(payload.get("eventType", "")),
        }
        try:
            async with asyncio.timeout(self._deadline):
                response = await self._client.post(self._url, json=payload, headers=headers)
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
