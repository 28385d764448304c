"""Keyset pagination over (created_at desc, id desc): stable under inserts, O(limit) per page."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import orjson

from app.kernel.errors import InvalidInputError

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = orjson.dumps(
            {"c": self.created_at.isoformat(), "i": str(self.id)}
        )  # compact: it travels in URLs
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        # A cursor is client input: any shape, any value. Everything but the exact shape we
        # write ({"c": aware ISO timestamp, "i": UUID string}) is a 422, never a 500.
        try:
            padded = token + "=" * (-len(token) % 4)
            data = orjson.loads(base64.b64decode(padded.encode(), altchars=b"-_", validate=True))
            if not isinstance(data, dict) or set(data) != {"c", "i"}:
                raise ValueError("not a cursor object")
            stamp, identifier = data["c"], data["i"]
            if not isinstance(stamp, str) or not isinstance(identifier, str):
                raise ValueError("cursor fields must be strings")
            created_at = datetime.fromisoformat(stamp)
            if created_at.tzinfo is None:
                raise ValueError("naive timestamp")
            # In UTC and within datetime's range (0001-01-01T00:00+01:00 is not).
            created_at = created_at.astimezone(UTC)
            return cls(created_at=created_at, id=uuid.UUID(identifier))
        except (ValueError, TypeError, OverflowError, binascii.Error):  # orjson.JSONDecodeError: ValueError
            raise InvalidInputError("Invalid cursor", {"cursor": ["is not a valid page cursor"]}) from None


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    limit: int
    next_cursor: Cursor | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None
