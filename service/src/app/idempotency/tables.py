"""idempotency_keys: the first response to each (user, Idempotency-Key), until it expires."""

from __future__ import annotations

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Table, Uuid

from app.idempotency.port import KEY_MAX_LENGTH
from app.persistence.database import UTCDateTime, metadata

# The hex SHA-256 of the request fingerprint.
REQUEST_HASH_LENGTH = 64

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(KEY_MAX_LENGTH), nullable=False),
    Column("request_hash", String(REQUEST_HASH_LENGTH), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", JSON, nullable=False),
    Column("location", String(2048), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    # Keys are scoped per user: two users may pick the same key.
    PrimaryKeyConstraint("user_id", "key"),
    # For a sweep of expired keys across users.
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)
