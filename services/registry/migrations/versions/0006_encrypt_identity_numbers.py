"""NIK, No. KK and uploaded import files encrypted at rest, with keyed hashes for lookups

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00

Existing rows are encrypted with the keys of the registry's settings (KUBE_DATA_KEYS,
KUBE_LOOKUP_KEY or their _FILE forms); an empty database needs none. The plain columns are
dropped in the same transaction, so no plain value survives the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.config import load_settings
from shared.encryption import DataKeyError, DataKeys

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: later changes to the models must not change what this revision did.
NIK_PURPOSE = b"members.nik"
KK_PURPOSE = b"members.kk_number"
IMPORT_FILE_PURPOSE = b"imports.content"
BATCH = 1000

members = sa.table(
    "members",
    sa.column("id", sa.Uuid()),
    sa.column("nik", sa.String()),
    sa.column("kk_number", sa.String()),
    sa.column("nik_encrypted", sa.LargeBinary()),
    sa.column("nik_hash", sa.LargeBinary()),
    sa.column("kk_encrypted", sa.LargeBinary()),
    sa.column("kk_hash", sa.LargeBinary()),
)
imports = sa.table(
    "imports",
    sa.column("id", sa.Uuid()),
    sa.column("content", sa.LargeBinary()),
    sa.column("content_encrypted", sa.LargeBinary()),
)


def _keys() -> DataKeys:
    url = op.get_bind().engine.url.render_as_string(hide_password=False)
    try:
        return DataKeys.from_settings(load_settings("registry", database_url=url))
    except DataKeyError as exc:
        raise RuntimeError(f"registry migration 0006 encrypts existing members: {exc}") from None


def _batches(connection, table, columns):
    """Rows of `table` in primary-key order, BATCH at a time."""
    after = None
    while True:
        statement = sa.select(table.c.id, *columns).order_by(table.c.id).limit(BATCH)
        if after is not None:
            statement = statement.where(table.c.id > after)
        rows = connection.execute(statement).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _encrypt_existing(connection) -> None:
    has_members = connection.scalar(sa.select(sa.exists().select_from(members)))
    has_files = connection.scalar(
        sa.select(sa.exists().where(sa.func.length(imports.c.content) > 0))
    )
    if not has_members and not has_files:
        return
    keys = _keys()
    fill_member = (
        sa.update(members)
        .where(members.c.id == sa.bindparam("row_id"))
        .values(
            nik_encrypted=sa.bindparam("nik_e"),
            nik_hash=sa.bindparam("nik_h"),
            kk_encrypted=sa.bindparam("kk_e"),
            kk_hash=sa.bindparam("kk_h"),
        )
    )
    for rows in _batches(connection, members, (members.c.nik, members.c.kk_number)):
        connection.execute(
            fill_member,
            [
                {
                    "row_id": row.id,
                    "nik_e": keys.encrypt_text(row.nik, purpose=NIK_PURPOSE),
                    "nik_h": keys.lookup_hash(row.nik, purpose=b"nik"),
                    "kk_e": keys.encrypt_text(row.kk_number, purpose=KK_PURPOSE),
                    "kk_h": keys.lookup_hash(row.kk_number, purpose=b"kk"),
                }
                for row in rows
            ],
        )
    files = sa.select(imports.c.id).where(sa.func.length(imports.c.content) > 0)
    for (import_id,) in connection.execute(files).all():
        content = connection.scalar(sa.select(imports.c.content).where(imports.c.id == import_id))
        connection.execute(
            sa.update(imports)
            .where(imports.c.id == import_id)
            .values(content_encrypted=keys.encrypt(content, purpose=IMPORT_FILE_PURPOSE))
        )


def upgrade() -> None:
    for name in ("nik_encrypted", "nik_hash", "kk_encrypted", "kk_hash"):
        op.add_column("members", sa.Column(name, sa.LargeBinary(), nullable=True))
    op.add_column("imports", sa.Column("content_encrypted", sa.LargeBinary(), nullable=True))
    _encrypt_existing(op.get_bind())
    # Purged files stay empty.
    op.execute(
        sa.update(imports)
        .where(imports.c.content_encrypted.is_(None))
        .values(content_encrypted=b"")
    )
    for name in ("nik_encrypted", "nik_hash", "kk_encrypted", "kk_hash"):
        op.alter_column("members", name, nullable=False)
    op.alter_column("imports", "content_encrypted", nullable=False)
    op.drop_index("uq_members_active_nik", table_name="members")
    op.drop_index("ix_members_nik", table_name="members")
    op.create_index("ix_members_nik_hash", "members", ["nik_hash"], unique=False)
    op.create_index(
        "uq_members_active_nik",
        "members",
        ["nik_hash"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.drop_column("members", "nik")
    op.drop_column("members", "kk_number")
    op.drop_column("imports", "content")


def downgrade() -> None:
    op.add_column("members", sa.Column("nik", sa.String(length=16), nullable=True))
    op.add_column("members", sa.Column("kk_number", sa.String(length=16), nullable=True))
    op.add_column("imports", sa.Column("content", sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    if connection.scalar(sa.select(sa.exists().select_from(members))):
        keys = _keys()
        columns = (members.c.nik_encrypted, members.c.kk_encrypted)
        for rows in _batches(connection, members, columns):
            connection.execute(
                sa.update(members)
                .where(members.c.id == sa.bindparam("row_id"))
                .values(nik=sa.bindparam("nik_p"), kk_number=sa.bindparam("kk_p")),
                [
                    {
                        "row_id": row.id,
                        "nik_p": keys.decrypt_text(row.nik_encrypted, purpose=NIK_PURPOSE),
                        "kk_p": keys.decrypt_text(row.kk_encrypted, purpose=KK_PURPOSE),
                    }
                    for row in rows
                ],
            )
    files = sa.select(imports.c.id).where(sa.func.length(imports.c.content_encrypted) > 0)
    found = connection.execute(files).all()
    keys = _keys() if found else None
    for (import_id,) in found:
        value = connection.scalar(
            sa.select(imports.c.content_encrypted).where(imports.c.id == import_id)
        )
        connection.execute(
            sa.update(imports)
            .where(imports.c.id == import_id)
            .values(content=keys.decrypt(value, purpose=IMPORT_FILE_PURPOSE))
        )
    op.execute(sa.update(imports).where(imports.c.content.is_(None)).values(content=b""))
    op.alter_column("members", "nik", nullable=False)
    op.alter_column("members", "kk_number", nullable=False)
    op.alter_column("imports", "content", nullable=False)
    op.drop_index("uq_members_active_nik", table_name="members")
    op.drop_index("ix_members_nik_hash", table_name="members")
    op.create_index("ix_members_nik", "members", ["nik"], unique=False)
    op.create_index(
        "uq_members_active_nik", "members", ["nik"], unique=True, postgresql_where=sa.text("active")
    )
    for name in ("nik_encrypted", "nik_hash", "kk_encrypted", "kk_hash"):
        op.drop_column("members", name)
    op.drop_column("imports", "content_encrypted")
