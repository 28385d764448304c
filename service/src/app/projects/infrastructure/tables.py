from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table, Uuid

from app.persistence.database import UTCDateTime, metadata
from app.projects.domain.models import (
    DESCRIPTION_MAX_LENGTH,
    NAME_MAX_LENGTH,
    ProjectStatus,
    ProjectType,
)


def _one_of(values: type[ProjectType] | type[ProjectStatus]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


projects = Table(
    "projects",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(NAME_MAX_LENGTH), nullable=False),
    Column("description", String(DESCRIPTION_MAX_LENGTH), nullable=True),
    Column("type", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("owner_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint(f"type IN ({_one_of(ProjectType)})", name="type_valid"),
    CheckConstraint(f"status IN ({_one_of(ProjectStatus)})", name="status_valid"),
    # One index per list query shape (keyset order created_at desc, id desc):
    # a member's list (owner, optional status) and a manager's list (optional status).
    Index("ix_projects_owner_status_created", "owner_id", "status", "created_at", "id"),
    Index("ix_projects_owner_created", "owner_id", "created_at", "id"),
    Index("ix_projects_status_created", "status", "created_at", "id"),
    Index("ix_projects_created", "created_at", "id"),
)
