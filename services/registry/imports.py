"""Bulk imports, the resource: a CSV or XLSX of groups and their members, streamed in at
upload through cheap checks into encrypted chunks, and stored as a queued import that the
worker runs (`import_run`).

One row per member; the group's columns repeat on each of its rows. A group with any bad
row is rejected whole; a group that already exists (same name, any case, in the same
village, not dissolved) is left unchanged, so a file can be imported again without
duplicating anything.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import BinaryIO

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import Session

from services.registry.import_run import lock_connection, try_lock, unlock
from services.registry.models import Import, ImportChunk, import_chunk_purpose
from services.registry.spreadsheet import UploadCheck
from shared.db import Database, utcnow
from shared.encryption import data_keys
from shared.scope import RegionScope

QUEUED_TOO_LONG = timedelta(seconds=60)
# Plain bytes per stored chunk: what the request holds in memory at a time.
CHUNK_BYTES = 1024 * 1024


def create_import(
    session: Session, *, filename: str, file: BinaryIO, scope: RegionScope, actor: str
) -> Import:
    """Stream an upload (`file`, seekable) through its cheap checks into encrypted chunks and
    store it as a queued import (the caller commits and queues it)."""
    # Browsers may send a client path (C:\fakepath\...); keep the file's own name.
    name = re.split(r"[\\/]", filename)[-1].strip()[:255] or "upload"
    check = UploadCheck(filename)
    job = Import(
        id=uuid.uuid4(),
        filename=name,
        file_format="",
        content_encrypted=b"",
        status="queued",
        region_scope=scope.prefix,
        created_by=actor,
        created_at=utcnow(),
        # Counted by the worker before it writes any group (0 until then).
        total_rows=0,
        processed_rows=0,
        groups_created=0,
        groups_unchanged=0,
        groups_rejected=0,
        row_errors=[],
    )
    session.add(job)
    session.flush()
    keys, seq = data_keys(), 0
    while chunk := file.read(CHUNK_BYTES):
        # A bad file is refused at its first bad chunk; the rolled-back request keeps nothing.
        check.feed(chunk)
        session.execute(
            insert(ImportChunk).values(
                import_id=job.id,
                seq=seq,
                content_encrypted=keys.encrypt(chunk, purpose=import_chunk_purpose(job.id, seq)),
            )
        )
        seq += 1
    job.file_format = check.finish(file)
    session.flush()
    return job


def scoped_imports(scope: RegionScope) -> Select:
    """Imports the caller's region covers: those made within it (nationwide covers all)."""
    return select(Import).where(scope.where(Import.region_scope))


def list_imports(scope: RegionScope) -> Select:
    """The caller's imports, newest first."""
    return scoped_imports(scope).order_by(Import.created_at.desc(), Import.id)


def find_import(session: Session, import_id: uuid.UUID, scope: RegionScope) -> Import:
    """The import, if the caller's region covers it; otherwise NotFound."""
    return scope.one(
        session, select(Import).where(Import.id == import_id), Import.region_scope, what="import"
    )


def stalled_imports(db: Database, *, queued_for: timedelta = QUEUED_TOO_LONG) -> list[uuid.UUID]:
    """Imports whose processing never started or whose worker died: queued too long, or
    processing with no run holding the import's lock."""
    cutoff = utcnow() - queued_for
    with db.transaction() as session:
        queued = session.scalars(
            select(Import.id).where(Import.status == "queued", Import.created_at < cutoff)
        ).all()
        processing = session.scalars(select(Import.id).where(Import.status == "processing")).all()
    orphaned = []
    with lock_connection(db) as connection:
        for import_id in processing:
            if try_lock(connection, import_id):
                unlock(connection, import_id)
                orphaned.append(import_id)
    return [*queued, *orphaned]


def purge_import_files(db: Database, *, kept_for: timedelta) -> int:
    """Drop the uploaded files (full NIK and No. KK of every row) of imports finished longer
    than `kept_for` ago; their outcome and row errors stay. Return how many were purged."""
    cutoff = utcnow() - kept_for
    finished = select(Import.id).where(
        Import.status.in_(("done", "failed")), Import.finished_at < cutoff
    )
    with db.transaction() as session:
        chunked = session.scalars(
            delete(ImportChunk)
            .where(ImportChunk.import_id.in_(finished))
            .returning(ImportChunk.import_id)
        ).all()
        # Files stored before import_chunks, in the import's own row.
        whole = session.scalars(
            update(Import)
            .where(Import.id.in_(finished), func.length(Import.content_encrypted) > 0)
            .values(content_encrypted=b"")
            .returning(Import.id)
        ).all()
    return len({*chunked, *whole})
