"""Idempotency keys: a retried command returns its first response and changes nothing.

The client sends `Idempotency-Key`; the key is scoped to the caller (user id). The first
request with a key records the response it got, in the same transaction as the change
it made; a retry with the same key and the same request gets that response again. The
same key with a different request is refused (422): it is a client bug, and guessing
which request was meant would be worse. Records expire after IDEMPOTENCY_TTL_SECONDS;
an expired key behaves as new.

Framework-free: the application layer sees this port; infrastructure implements it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from app.kernel.errors import InvalidInputError

IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255

T = TypeVar("T")


@dataclass(frozen=True)
class StoredResponse:
    """What the client received: replayed as is on a retry."""

    status_code: int
    body: dict[str, Any]
    location: str | None = None


@dataclass(frozen=True)
class IdempotencyRecord:
    user_id: uuid.UUID
    key: str
    request_hash: str
    response: StoredResponse
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class IdempotentRequest(Generic[T]):
    """A command sent with an idempotency key.

    `request_hash` fingerprints the request (method, path, canonical body);
    `render` turns the command's result into the response to record and send.
    """

    key: str
    request_hash: str
    ttl: timedelta
    render: Callable[[T], StoredResponse]


@dataclass(frozen=True)
class IdempotentOutcome:
    response: StoredResponse
    replayed: bool


class IdempotencyKeyReusedError(InvalidInputError):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__(
            "Idempotency-Key was already used with a different request",
            {IDEMPOTENCY_HEADER: ["already used with a different request; use a new key"]},
        )


class IdempotencyStore(Protocol):
    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Record `record` unless an unexpired record holds its (user, key); return that one then.

        Runs first in the unit of work: a concurrent request with the same key waits for
        this transaction and then finds its record.
        """
        ...


def replay_or_refuse(existing: IdempotencyRecord, request_hash: str) -> IdempotentOutcome:
    if existing.request_hash != request_hash:
        raise IdempotencyKeyReusedError
    return IdempotentOutcome(existing.response, replayed=True)
