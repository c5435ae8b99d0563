"""idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:40:17.807276
"""

from collections.abc import Sequence

from shared.events.schema import create_idempotency_keys, drop_idempotency_keys

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys()


def downgrade() -> None:
    drop_idempotency_keys()
