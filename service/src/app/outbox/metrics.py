"""Prometheus metrics of the worker process (names fixed by the kit's alert rules).

The worker serves them on its own port (WORKER_METRICS_PORT); the API has none of these.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from app.kernel.circuit_breaker import CircuitState
from app.outbox.queue import OutboxStats

DELIVERY_OUTCOMES = ("delivered", "retried", "dead_lettered")


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.pending = Gauge(
            "outbox_events_pending", "Outbox events waiting for delivery.", registry=registry
        )
        self.oldest_pending_age = Gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered outbox event (0 when none).",
            registry=registry,
        )
        self.dead_lettered = Gauge(
            "outbox_events_dead_lettered",
            "Outbox events that exhausted their attempts and wait for a replay or discard.",
            registry=registry,
        )
        self.deliveries = Counter(
            "outbox_deliveries",
            "Delivery attempts by outcome (retried = a failed attempt that will be tried again).",
            ["outcome"],
            registry=registry,
        )
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome=outcome)  # export zeros, so rate() works from the start
        self.last_poll_success = Gauge(
            "outbox_last_poll_success_timestamp_seconds",
            "Unix time of the relay's last poll that reached the database (0: none yet).",
            registry=registry,
        )
        self.poll_failures = Counter(
            "outbox_poll_failures",
            "Relay polls that failed (database unreachable, a bug); the relay polls again.",
            registry=registry,
        )
        self.breaker_state = Gauge(
            "circuit_breaker_state",
            "Circuit breaker state per dependency: 0 closed, 1 half-open, 2 open.",
            ["name"],
            registry=registry,
        )

    def observe_stats(self, stats: OutboxStats) -> None:
        self.pending.set(stats.pending)
        self.oldest_pending_age.set(stats.oldest_pending_age_seconds)
        self.dead_lettered.set(stats.dead)

    def observe_breaker(self, name: str, state: CircuitState) -> None:
        self.breaker_state.labels(name=name).set(int(state))
