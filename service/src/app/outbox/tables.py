"""The transactional outbox: events written with the change that caused them.

A worker process (app.worker) claims due rows with `FOR UPDATE SKIP LOCKED`,
delivers them at least once, and dead-letters them after N attempts.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text, Uuid, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.kernel.events import DomainEvent
from app.persistence.database import UTCDateTime, metadata


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False, server_default=text(f"'{OutboxStatus.PENDING.value}'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("available_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    # The relay's claim query: due pending rows, oldest first.
    Index("ix_outbox_events_status_available_at", "status", "available_at"),
)


def event_row(event: DomainEvent) -> dict[str, object]:
    return {
        "id": event.event_id,
        "event_type": event.event_type,
        "payload": {
            "eventId": str(event.event_id),
            "eventType": event.event_type,
            "occurredAt": event.occurred_at.isoformat(),
            "data": event.payload(),
        },
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "available_at": event.occurred_at,
        "created_at": event.occurred_at,
    }


async def write_events(connection: AsyncConnection, events: list[DomainEvent]) -> None:
    """The units of work's event sink: the events join the transaction that raised them."""
    await connection.execute(insert(outbox_events), [event_row(event) for event in events])
