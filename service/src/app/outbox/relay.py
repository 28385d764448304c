"""The relay loop: claim due outbox events, deliver them, record what happened.

Why a relay over the outbox table rather than a queue library (saq, arq, procrastinate):
the outbox row is already written in the same transaction as the project, so the table
*is* a durable queue. Handing the event to Redis (saq/arq) would need a second hop
that is itself only safe if done from the outbox (enqueue-after-commit loses the job
when the process dies in between), adds a server to run and watch, and splits one
event's state across two stores. `SELECT ... FOR UPDATE SKIP LOCKED` gives several
workers disjoint batches on PostgreSQL with nothing new to operate.

Failure handling per event (see webhook.py for the classification):
- delivered: status delivered.
- transient: retried after an exponential backoff with full jitter, capped at
  OUTBOX_BACKOFF_MAX_SECONDS; after OUTBOX_MAX_ATTEMPTS attempts, dead-lettered.
- permanent (the receiver refused the payload): dead-lettered at once.
- not attempted (breaker open): released without using up an attempt. A receiver
  outage shows as backlog age and an open breaker (both alerted on) and heals by
  itself when the receiver comes back; dead-letters are kept for events that need
  a decision. An attempt is counted at claim time, so an event that crashes the
  worker still runs out of attempts.
Events of one batch are delivered concurrently: there is no ordering guarantee, the
payload carries `occurredAt` and `eventId` for the receiver to order and de-duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from app.kernel.circuit_breaker import CircuitState
from app.outbox.liveness import Heartbeat
from app.outbox.metrics import WorkerMetrics
from app.outbox.queue import ClaimedEvent, OutboxQueue
from app.outbox.webhook import DeliveryOutcome, DeliveryResult, WebhookSender
from app.settings import Settings

log = logging.getLogger("app.worker")


def backoff_delay(attempt: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))], so retries of many events spread out."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling * rand()


@dataclass(frozen=True)
class RelayConfig:
    batch_size: int
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    poll_interval_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RelayConfig:
        return cls(
            batch_size=settings.outbox_batch_size,
            max_attempts=settings.outbox_max_attempts,
            backoff_base_seconds=settings.outbox_backoff_base_seconds,
            backoff_max_seconds=settings.outbox_backoff_max_seconds,
            poll_interval_seconds=settings.outbox_poll_interval_seconds,
        )


class OutboxRelay:
    def __init__(
        self,
        queue: OutboxQueue,
        sender: WebhookSender,
        metrics: WorkerMetrics,
        config: RelayConfig,
        *,
        rand: Callable[[], float] = random.random,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.queue = queue
        self.sender = sender
        self.metrics = metrics
        self.config = config
        self._rand = rand
        self.heartbeat = heartbeat

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; a batch in hand is always finished first."""
        while not stop.is_set():
            if self.heartbeat is not None:
                self.heartbeat.beat()  # the loop turns: liveness (a failed poll is a turn too)
            try:
                claimed = await self.run_once()
            except Exception:  # database unreachable, etc.: the next poll tries again
                log.exception("outbox poll failed")
                self.metrics.poll_failures.inc()
                claimed = 0
            else:
                self.metrics.last_poll_success.set_to_current_time()
            if claimed < self.config.batch_size:  # a full batch suggests more are due: no pause
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.config.poll_interval_seconds)

    async def run_once(self) -> int:
        """Claim and deliver one batch; returns how many events were claimed."""
        breaker = self.sender.breaker
        claimed: list[ClaimedEvent] = []
        if breaker.state is not CircuitState.OPEN:
            # Half-open: one event probes the receiver; the rest wait for its verdict.
            limit = 1 if breaker.state is CircuitState.HALF_OPEN else self.config.batch_size
            claimed = await self.queue.claim(limit)
        if claimed:
            results = await asyncio.gather(*(self._deliver(event) for event in claimed))
            await self._record(list(zip(claimed, results, strict=True)))
        self.metrics.observe_breaker(breaker.name, breaker.state)
        self.metrics.observe_stats(await self.queue.stats())
        return len(claimed)

    async def _deliver(self, event: ClaimedEvent) -> DeliveryResult:
        try:
            return await self.sender.send(event.payload)
        except Exception as exc:  # a bug must not lose the rest of the batch's outcomes
            log.exception("delivery raised", extra={"event_id": str(event.id)})
            return DeliveryResult(DeliveryOutcome.TRANSIENT, f"{type(exc).__name__}: {exc}")

    async def _record(self, outcomes: list[tuple[ClaimedEvent, DeliveryResult]]) -> None:
        delivered: list[ClaimedEvent] = []
        retry: list[tuple[ClaimedEvent, float, str]] = []
        dead: list[tuple[ClaimedEvent, str]] = []
        not_attempted: list[tuple[ClaimedEvent, float]] = []
        for event, result in outcomes:
            error = result.error or ""
            if result.outcome is DeliveryOutcome.DELIVERED:
                delivered.append(event)
            elif result.outcome is DeliveryOutcome.NOT_ATTEMPTED:
                wait = max(self.sender.breaker.seconds_until_trial(), self.config.poll_interval_seconds)
                not_attempted.append((event, wait))
            elif result.outcome is DeliveryOutcome.PERMANENT:
                dead.append((event, f"rejected by the receiver: {error}"))
            elif event.attempts >= self.config.max_attempts:
                dead.append((event, f"gave up after {event.attempts} attempts: {error}"))
            else:
                delay = backoff_delay(
                    event.attempts,
                    base=self.config.backoff_base_seconds,
                    cap=self.config.backoff_max_seconds,
                    rand=self._rand,
                )
                retry.append((event, delay, error))
        await self.queue.record(delivered=delivered, retry=retry, dead=dead, not_attempted=not_attempted)

        self.metrics.deliveries.labels(outcome="delivered").inc(len(delivered))
        self.metrics.deliveries.labels(outcome="retried").inc(len(retry))
        self.metrics.deliveries.labels(outcome="dead_lettered").inc(len(dead))
        for event in delivered:
            log.info("event delivered", extra={"event_id": str(event.id), "attempts": event.attempts})
        for event, delay, error in retry:
            log.warning(
                "event delivery failed, will retry",
                extra={
                    "event_id": str(event.id),
                    "attempts": event.attempts,
                    "retry_in_s": round(delay, 3),
                    "error": error,
                },
            )
        for event, error in dead:
            log.error(
                "event dead-lettered",
                extra={"event_id": str(event.id), "attempts": event.attempts, "error": error},
            )
