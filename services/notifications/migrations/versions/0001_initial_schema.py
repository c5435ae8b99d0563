"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 01:28:08.130910
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.events.schema import create_event_tables, drop_event_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_event_tables()
    op.create_table(
        "recipient_groups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region_code", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_recipient_groups_region_code"), "recipient_groups", ["region_code"], unique=False
    )
    op.create_table(
        "contacts",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["recipient_groups.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("member_id"),
    )
    op.create_index(op.f("ix_contacts_group_id"), "contacts", ["group_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_contacts_group_id"), table_name="contacts")
    op.drop_table("contacts")
    op.drop_index(op.f("ix_recipient_groups_region_code"), table_name="recipient_groups")
    op.drop_table("recipient_groups")
    drop_event_tables()
