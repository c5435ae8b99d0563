"""Re-encrypting the registry's personal data under the newest data key (`kube keys rotate`),
while the platform runs: small batches, each its own short transaction, rows locked with
SKIP LOCKED (a row a request is changing is taken on the next pass), so it is safe to stop,
repeat and resume at any time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    func,
    or_,
    select,
    true,
    tuple_,
    update,
)

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


@dataclass(frozen=True)
class _Encrypted:
    """A table's encrypted columns: how its rows are keyed, which rows still need the newest
    key, and each column's associated data (its purpose) for a row."""

    table: Table
    key: tuple[str, ...]
    purposes: dict[str, Callable[[Row], bytes]]
    batch: int
    where: Callable[[Table], ColumnElement[bool]] = lambda table: true()

    def stale(self, keys: DataKeys) -> ColumnElement[bool]:
        columns = (_stale(self.table.c[name], keys) for name in self.purposes)
        return and_(self.where(self.table), or_(*columns))


_ENCRYPTED = {
    "members": _Encrypted(
        Member.__table__,
        ("id",),
        {"nik_encrypted": lambda row: NIK_PURPOSE, "kk_encrypted": lambda row: KK_PURPOSE},
        MEMBER_BATCH,
    ),
    "imports": _Encrypted(
        Import.__table__,
        ("id",),
        {"content_encrypted": lambda row: IMPORT_FILE_PURPOSE},
        IMPORT_FILE_BATCH,
        # Files stored since import_chunks keep an empty column.
        lambda table: func.length(table.c.content_encrypted) > 0,
    ),
    "import_chunks": _Encrypted(
        ImportChunk.__table__,
        ("import_id", "seq"),
        {"content_encrypted": lambda row: import_chunk_purpose(row.import_id, row.seq)},
        IMPORT_CHUNK_BATCH,
    ),
}


def count_stale(db: Database, keys: DataKeys) -> dict[str, int]:
    """How many members, import files and import file chunks still hold values under an older
    key."""
    with db.transaction() as session:
        return {
            name: session.scalar(
                select(func.count()).select_from(spec.table).where(spec.stale(keys))
            )
            for name, spec in _ENCRYPTED.items()
        }


def _batch(session, spec: _Encrypted, keys: DataKeys, after, size: int) -> tuple[int, object]:
    """Re-encrypt the next `size` stale rows after the key `after`; how many, and the last key."""
    table = spec.table
    key = [table.c[name] for name in spec.key]
    statement = (
        select(*key, *(table.c[name] for name in spec.purposes))
        .where(spec.stale(keys))
        .order_by(*key)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        statement = statement.where(tuple_(*key) > tuple_(*after))
    rows = session.execute(statement).all()
    if not rows:
        return 0, None
    values = {name: bindparam(f"new_{name}") for name in spec.purposes}
    if "updated_at" in table.c:
        # Not a change of the row (a member's version, ETag and updated_at stay).
        values["updated_at"] = table.c.updated_at
    session.execute(
        update(table)
        .where(*(table.c[name] == bindparam(f"key_{name}") for name in spec.key))
        .values(values),
        [
            {
                **{f"key_{name}": getattr(row, name) for name in spec.key},
                **{
                    f"new_{name}": keys.reencrypt(getattr(row, name), purpose=purpose(row))
                    for name, purpose in spec.purposes.items()
                },
            }
            for row in rows
        ],
    )
    return len(rows), tuple(getattr(rows[-1], name) for name in spec.key)


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
    for table, spec in _ENCRYPTED.items():
        size = batch_size or spec.batch
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
                    done, after = _batch(session, spec, keys, after, size)
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
