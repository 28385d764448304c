"""The outbox worker process: `python -m app.worker` (console script `reference-worker`).

Same image as the API, a second process type. Commands:
  python -m app.worker                 deliver outbox events to WEBHOOK_URL until SIGTERM
  python -m app.worker replay-dead     put every dead-lettered event back in the queue
  python -m app.worker replay-dead --event-id <uuid> [--event-id <uuid> ...]

The worker serves its own Prometheus /metrics on WORKER_METRICS_HOST (default HOST)
and WORKER_METRICS_PORT, and there GET /health/live: 200 while the relay loop turns, 503
once it has not for WORKER_LIVENESS_STALE_SECONDS (app/outbox/liveness.py).
SIGTERM/SIGINT: stop claiming, finish the batch in hand
(bounded by WEBHOOK_TIMEOUT_SECONDS), exit 0. Without WEBHOOK_URL it refuses to start
(one line, exit 2) rather than silently letting the backlog grow; in production-like
environments the same goes for WEBHOOK_SIGNING_SECRET (receivers must be able to verify).
Beside the relay it sweeps expired idempotency keys every IDEMPOTENCY_SWEEP_INTERVAL_SECONDS
(app/idempotency/sweep.py), the one periodic job the API leaves to it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import httpx
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.idempotency.sweep import IdempotencySweeper
from app.kernel.circuit_breaker import CircuitBreaker
from app.observability.logging import configure_logging
from app.outbox.liveness import Heartbeat, start_server
from app.outbox.metrics import WorkerMetrics
from app.outbox.queue import OutboxQueue
from app.outbox.relay import OutboxRelay, RelayConfig
from app.outbox.webhook import WebhookSender
from app.persistence.database import create_engine
from app.settings import Settings, get_settings

log = logging.getLogger("app.worker")
BREAKER_NAME = "webhook"
EXIT_USAGE = 2


def settings_problem(settings: Settings) -> str | None:
    """Why these settings cannot run the worker (None when they can)."""
    if not settings.webhook_url:
        return "WEBHOOK_URL is not set: the worker has nowhere to deliver events"
    parts = urlsplit(settings.webhook_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return f"WEBHOOK_URL must be an http(s) URL, got {settings.webhook_url!r}"
    if settings.outbox_lease_seconds <= settings.webhook_timeout_seconds:
        return (
            f"OUTBOX_LEASE_SECONDS ({settings.outbox_lease_seconds:g}) must exceed "
            f"WEBHOOK_TIMEOUT_SECONDS ({settings.webhook_timeout_seconds:g}), or a slow delivery "
            "would be claimed twice"
        )
    if settings.environment.is_production_like and settings.webhook_signing_secret is None:
        return (
            f"WEBHOOK_SIGNING_SECRET is not set: ENVIRONMENT={settings.environment.value} requires "
            "signed deliveries"
        )
    return None


def build_relay(
    settings: Settings,
    engine: AsyncEngine,
    registry: CollectorRegistry,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    rand: Callable[[], float] = random.random,
    heartbeat: Heartbeat | None = None,
) -> OutboxRelay:
    """Wire the relay from settings (also used by the tests, with their own registry)."""
    assert settings.webhook_url is not None, "check settings_problem() first"
    metrics = WorkerMetrics(registry)
    breaker = CircuitBreaker(
        BREAKER_NAME,
        failure_threshold=settings.circuit_breaker_failure_threshold,
        reset_seconds=settings.circuit_breaker_reset_seconds,
        on_state_change=metrics.observe_breaker,
    )
    metrics.observe_breaker(breaker.name, breaker.state)
    sender = WebhookSender(
        settings.webhook_url,
        timeout_seconds=settings.webhook_timeout_seconds,
        breaker=breaker,
        user_agent=f"{settings.service_name}-worker/{settings.version}",
        signing_secret=(
            settings.webhook_signing_secret.get_secret_value() if settings.webhook_signing_secret else None
        ),
        transport=transport,
    )
    queue = OutboxQueue(engine, lease_seconds=settings.outbox_lease_seconds)
    return OutboxRelay(
        queue, sender, metrics, RelayConfig.from_settings(settings), rand=rand, heartbeat=heartbeat
    )


def build_sweeper(
    settings: Settings, engine: AsyncEngine, registry: CollectorRegistry
) -> IdempotencySweeper | None:
    """The idempotency key sweep, or None when IDEMPOTENCY_SWEEP_INTERVAL_SECONDS is 0."""
    if settings.idempotency_sweep_interval_seconds == 0:
        return None
    return IdempotencySweeper(engine, registry, interval_seconds=settings.idempotency_sweep_interval_seconds)


async def serve(
    settings: Settings,
    registry: CollectorRegistry,
    stop: asyncio.Event | None = None,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Run the relay and the sweep until `stop` is set or the process gets SIGTERM/SIGINT."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stop, signum)
    engine = create_engine(settings)
    relay = build_relay(settings, engine, registry, heartbeat=heartbeat)
    sweeper = build_sweeper(settings, engine, registry)
    log.info(
        "worker started",
        extra={
            "batch_size": settings.outbox_batch_size,
            "poll_interval_s": settings.outbox_poll_interval_seconds,
            "signed": settings.webhook_signing_secret is not None,
            "idempotency_sweep_interval_s": settings.idempotency_sweep_interval_seconds,
        },
    )
    try:
        async with asyncio.TaskGroup() as jobs:
            jobs.create_task(relay.run(stop))
            if sweeper is not None:
                jobs.create_task(sweeper.run(stop))
    finally:
        await relay.sender.aclose()
        await engine.dispose()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("worker stopped")


def _request_stop(stop: asyncio.Event, signum: int) -> None:
    log.info("stop requested: finishing the batch in hand", extra={"signal": signal.Signals(signum).name})
    stop.set()


async def replay_dead(settings: Settings, event_ids: Sequence[uuid.UUID] | None) -> int:
    engine = create_engine(settings)
    try:
        queue = OutboxQueue(engine, lease_seconds=settings.outbox_lease_seconds)
        replayed = await queue.replay_dead(event_ids)
    finally:
        await engine.dispose()
    if event_ids is not None and replayed < len(set(event_ids)):
        print(
            f"replayed {replayed} of {len(set(event_ids))} requested events: the others are not "
            "dead-lettered (unknown id, or already pending/delivered)",
            file=sys.stderr,
        )
        return 1
    print(f"replayed {replayed} dead-lettered event(s): they are pending again with fresh attempts")
    return 0


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an event id (UUID): {value!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app.worker", description="Outbox worker: delivers project events to WEBHOOK_URL."
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="deliver outbox events until SIGTERM (the default)")
    replay = commands.add_parser(
        "replay-dead", help="put dead-lettered events back in the queue with fresh attempts"
    )
    replay.add_argument(
        "--event-id",
        dest="event_ids",
        action="append",
        type=_event_id,
        metavar="UUID",
        help="replay only this event (repeatable); default: every dead-lettered event",
    )
    return parser


def _one_line(exc: ValidationError) -> str:
    messages = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]).upper()  # empty for a cross-field check
        messages.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(messages)


def main(argv: Sequence[str] | None = None, *, registry: CollectorRegistry = REGISTRY) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"worker: invalid settings: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.log_json)
    if args.command == "replay-dead":
        try:
            return asyncio.run(replay_dead(settings, args.event_ids))
        except (SQLAlchemyError, OSError) as exc:  # one line, not a stack trace
            print(f"worker: replay failed: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 1
    if (problem := settings_problem(settings)) is not None:
        print(f"worker: {problem}", file=sys.stderr)
        return EXIT_USAGE
    host = settings.worker_metrics_host or settings.host
    heartbeat = Heartbeat(settings.worker_liveness_stale_seconds)
    try:
        start_server(host, settings.worker_metrics_port, registry, heartbeat)
    except OSError as exc:
        print(
            f"worker: cannot serve metrics on {host}:{settings.worker_metrics_port}: {exc}", file=sys.stderr
        )
        return 1
    asyncio.run(serve(settings, registry, heartbeat=heartbeat))
    return 0


def run() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    run()
