"""Domain events: facts that other processes learn about through the outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from app.kernel.clock import utcnow


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    event_type: ClassVar[str] = "domain_event"
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=utcnow)

    def payload(self) -> dict[str, Any]:
        """JSON-ready body; the receiver de-duplicates deliveries by `eventId`."""
        raise NotImplementedError
