"""Uploaded import files stored as encrypted chunks, so an upload streams to the database

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-10 09:00:00

Imports stored before this revision keep their file in imports.content_encrypted, which the
worker, key rotation and the purge still read; new uploads leave it empty. A downgrade drops
the files of imports stored in chunks (their outcome stays).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_chunks",
        sa.Column(
            "import_id",
            sa.Uuid(),
            sa.ForeignKey("imports.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("content_encrypted", sa.LargeBinary(), nullable=False),
    )
    # Ciphertext does not compress: store it out of line without trying.
    op.execute("ALTER TABLE import_chunks ALTER COLUMN content_encrypted SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("import_chunks")
