"""create projects

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One index per list query shape; all end in (created_at, id) for the keyset order.
INDEXES = {
    "ix_projects_created": ["created_at", "id"],
    "ix_projects_owner_created": ["owner_id", "created_at", "id"],
    "ix_projects_owner_status_created": ["owner_id", "status", "created_at", "id"],
    "ix_projects_status_created": ["status", "created_at", "id"],
}


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'archived')", name=op.f("ck_projects_status_valid")
        ),
        sa.CheckConstraint("type IN ('internal', 'client', 'research')", name=op.f("ck_projects_type_valid")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_projects_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "projects", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="projects")
    op.drop_table("projects")
