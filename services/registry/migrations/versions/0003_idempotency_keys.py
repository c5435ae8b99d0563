"""idempotency keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 01:40:17.588956
"""

from collections.abc import Sequence

from shared.events.schema import create_idempotency_keys, drop_idempotency_keys

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys()


def downgrade() -> None:
    drop_idempotency_keys()
