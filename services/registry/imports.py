"""Bulk imports, the resource: a CSV or XLSX of groups and their members, checked at upload
and stored as a queued import that the worker runs (`import_run`).

One row per member; the group's columns repeat on each of its rows. A group with any bad
row is rejected whole; a group that already exists (same name, any case, in the same
village, not dissolved) is left unchanged, so a file can be imported again without
duplicating anything.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from services.registry.import_run import lock_connection, try_lock, unlock
from services.registry.models import Import
from services.registry.spreadsheet import inspect_upload
from shared.db import Database, utcnow
from shared.scope import RegionScope

QUEUED_TOO_LONG = timedelta(seconds=60)


def create_import(
    session: Session, *, filename: str, content: bytes, scope: RegionScope, actor: str
) -> Import:
    """Check an upload and store it as a queued import (the caller commits and queues it)."""
    file_format, rows = inspect_upload(filename, content)
    # Browsers may send a client path (C:\fakepath\...); keep the file's own name.
    name = re.split(r"[\\/]", filename)[-1].strip()[:255] or "upload"
    job = Import(
        id=uuid.uuid4(),
        filename=name,
        file_format=file_format,
        content=content,
        status="queued",
        region_scope=scope.prefix,
        created_by=actor,
        created_at=utcnow(),
        # A workbook's rows are counted by the worker (0 until then).
        total_rows=rows or 0,
        processed_rows=0,
        groups_created=0,
        groups_unchanged=0,
        groups_rejected=0,
        row_errors=[],
    )
    session.add(job)
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
    with db.transaction() as session:
        return session.execute(
            update(Import)
            .where(
                Import.status.in_(("done", "failed")),
                Import.finished_at < cutoff,
                func.length(Import.content_encrypted) > 0,
            )
            .values(content_encrypted=b"")
        ).rowcount
