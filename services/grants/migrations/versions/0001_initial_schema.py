"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 01:28:07.118601
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from shared.events.schema import create_event_tables, drop_event_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_event_tables()
    op.create_table(
        "group_projections",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region_code", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("business_type", sa.String(length=100), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("officers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_group_projections_region_code"), "group_projections", ["region_code"], unique=False
    )


def downgrade() -> None:
    drop_event_tables()
    op.drop_index(op.f("ix_group_projections_region_code"), table_name="group_projections")
    op.drop_table("group_projections")
