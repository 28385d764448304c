from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Integer, String, Table, Uuid

from app.kernel.principal import Role
from app.persistence.database import UTCDateTime, metadata

_ROLES = ", ".join(f"'{role.value}'" for role in Role)

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    # Lookups by email (login) go through the unique index this creates.
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("token_version", Integer, nullable=False, server_default="0"),
    CheckConstraint(f"role IN ({_ROLES})", name="role_valid"),
)
