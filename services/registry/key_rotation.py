"""Re-encrypting the registry's personal data under the newest data key (`kube keys rotate`),
while the platform runs: small batches, each its own short transaction, rows locked with
SKIP LOCKED (a row a request is changing is taken on the next pass), so it is safe to stop,
repeat and resume at any time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, func, or_, select, tuple_, update

from services.registry.models import (
    IMPORT_FILE_PURPOSE,
    KK_PURPOSE,
    NIK_PURPOSE,
    Import,
    ImportChunk,
    Member,
    import_chunk_purpose,
)
from shared.db import Database
from shared.encryption import DataKeys

MEMBER_BATCH = 500
# A file may be megabytes: one at a time keeps each transaction short.
IMPORT_FILE_BATCH = 1
# Chunks are a MiB each: a few MiB per transaction.
IMPORT_CHUNK_BATCH = 8
# Passes over what is left (rows that were locked by requests on an earlier pass).
MAX_PASSES = 5

_members = Member.__table__
_imports = Import.__table__
_chunks = ImportChunk.__table__


@dataclass
class Rotation:
    """What a rotation of one table did, and what it left under older keys."""

    table: str
    reencrypted: int = 0
    remaining: int = 0


def _stale(column, keys: DataKeys):
    """Rows whose value in `column` is not under the newest key."""
    prefix = keys.current_prefix
    return func.substring(column, 1, len(prefix)) != prefix


def _members_stale(keys: DataKeys):
    return or_(_stale(_members.c.nik_encrypted, keys), _stale(_members.c.kk_encrypted, keys))


def _imports_stale(keys: DataKeys):
    return (func.length(_imports.c.content_encrypted) > 0) & _stale(
        _imports.c.content_encrypted, keys
    )


def count_stale(db: Database, keys: DataKeys) -> dict[str, int]:
    """How many members, import files and import file chunks still hold values under an older
    key."""
    with db.transaction() as session:
        return {
            "import_chunks": session.scalar(
                select(func.count())
                .select_from(_chunks)
                .where(_stale(_chunks.c.content_encrypted, keys))
            ),
            "members": session.scalar(
                select(func.count()).select_from(_members).where(_members_stale(keys))
            ),
            "imports": session.scalar(
                select(func.count()).select_from(_imports).where(_imports_stale(keys))
            ),
        }


def _member_batch(session, keys: DataKeys, after, size: int) -> tuple[int, object]:
    statement = (
        select(_members.c.id, _members.c.nik_encrypted, _members.c.kk_encrypted)
        .where(_members_stale(keys))
        .order_by(_members.c.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        statement = statement.where(_members.c.id > after)
    rows = session.execute(statement).all()
    if not rows:
        return 0, None
    session.execute(
        update(_members)
        .where(_members.c.id == bindparam("row_id"))
        # Not a change of the member: its version, ETag and updated_at stay.
        .values(
            nik_encrypted=bindparam("nik"),
            kk_encrypted=bindparam("kk"),
            updated_at=_members.c.updated_at,
        ),
        [
            {
                "row_id": row.id,
                "nik": keys.reencrypt(row.nik_encrypted, purpose=NIK_PURPOSE),
                "kk": keys.reencrypt(row.kk_encrypted, purpose=KK_PURPOSE),
            }
            for row in rows
        ],
    )
    return len(rows), rows[-1].id


def _import_batch(session, keys: DataKeys, after, size: int) -> tuple[int, object]:
    statement = (
        select(_imports.c.id, _imports.c.content_encrypted)
        .where(_imports_stale(keys))
        .order_by(_imports.c.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        statement = statement.where(_imports.c.id > after)
    rows = session.execute(statement).all()
    if not rows:
        return 0, None
    session.execute(
        update(_imports)
        .where(_imports.c.id == bindparam("row_id"))
        .values(content_encrypted=bindparam("content")),
        [
            {
                "row_id": row.id,
                "content": keys.reencrypt(row.content_encrypted, purpose=IMPORT_FILE_PURPOSE),
            }
            for row in rows
        ],
    )
    return len(rows), rows[-1].id


def _import_chunk_batch(session, keys: DataKeys, after, size: int) -> tuple[int, object]:
    key = tuple_(_chunks.c.import_id, _chunks.c.seq)
    statement = (
        select(_chunks.c.import_id, _chunks.c.seq, _chunks.c.content_encrypted)
        .where(_stale(_chunks.c.content_encrypted, keys))
        .order_by(_chunks.c.import_id, _chunks.c.seq)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        statement = statement.where(key > tuple_(*after))
    rows = session.execute(statement).all()
    if not rows:
        return 0, None
    session.execute(
        update(_chunks)
        .where(_chunks.c.import_id == bindparam("row_id"), _chunks.c.seq == bindparam("row_seq"))
        .values(content_encrypted=bindparam("content")),
        [
            {
                "row_id": row.import_id,
                "row_seq": row.seq,
                "content": keys.reencrypt(
                    row.content_encrypted, purpose=import_chunk_purpose(row.import_id, row.seq)
                ),
            }
            for row in rows
        ],
    )
    return len(rows), (rows[-1].import_id, rows[-1].seq)


_TABLES = {
    "members": (_member_batch, MEMBER_BATCH),
    "imports": (_import_batch, IMPORT_FILE_BATCH),
    "import_chunks": (_import_chunk_batch, IMPORT_CHUNK_BATCH),
}


def rotate(
    db: Database,
    keys: DataKeys,
    *,
    batch_size: int | None = None,
    report: Callable[[str], None] = lambda line: None,
    pause_seconds: float = 1.0,
) -> list[Rotation]:
    """Re-encrypt every member's NIK and No. KK and every kept import file (whole or in
    chunks) under the newest key; each batch commits on its own, so an interrupted run loses
    nothing and a second run carries on. What is left under older keys after the last pass is
    in `remaining`."""
    results = []
    for table, (batch, default_size) in _TABLES.items():
        size = batch_size or default_size
        result = Rotation(table)
        todo = count_stale(db, keys)[table]
        report(f"{table}: {todo:,} to re-encrypt under key {keys.current_id!r}")
        for number in range(MAX_PASSES):
            if todo == 0:
                break
            if number:
                report(f"{table}: {todo:,} were busy; pass {number + 1} in {pause_seconds:g} s")
                time.sleep(pause_seconds)
            started, after = time.perf_counter(), None
            while True:
                with db.transaction() as session:
                    done, after = batch(session, keys, after, size)
                if not done:
                    break
                result.reencrypted += done
                seconds = max(time.perf_counter() - started, 1e-9)
                report(
                    f"{table}: {result.reencrypted:,} re-encrypted "
                    f"({result.reencrypted / seconds:,.0f}/s)"
                )
            todo = count_stale(db, keys)[table]
        result.remaining = todo
        report(f"{table}: done, {result.reencrypted:,} re-encrypted, {todo:,} left")
        results.append(result)
    return results
