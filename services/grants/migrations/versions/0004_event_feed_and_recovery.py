"""event feed positions, failed attempts and feed cursors

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:10:00
"""

from collections.abc import Sequence

from shared.events.schema import add_event_feed_and_recovery, drop_event_feed_and_recovery

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_event_feed_and_recovery()


def downgrade() -> None:
    drop_event_feed_and_recovery()
