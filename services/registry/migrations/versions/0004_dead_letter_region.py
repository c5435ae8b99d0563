"""dead letters name their event's region

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:00:00
"""

from collections.abc import Sequence

from shared.events.schema import add_dead_letter_region, drop_dead_letter_region

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_dead_letter_region()


def downgrade() -> None:
    drop_dead_letter_region()
