"""Keyset pagination over (created_at desc, id desc): stable under inserts, O(limit) per page."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import orjson

from app.core.errors import InvalidInputError

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


@dataclass(frozen=True)
class Cursor:
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = orjson.dumps({"c": self.created_at.isoformat(), "i": str(self.id)})  # compact, as before
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
            created_at = datetime.fromisoformat(data["c"])
            if created_at.tzinfo is None:
                raise ValueError("naive timestamp")
            return cls(created_at=created_at, id=uuid.UUID(data["i"]))
        except (ValueError, KeyError, TypeError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
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
