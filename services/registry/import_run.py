"""Running an import: the worker's pass over a queued file, one transaction per batch of
groups (import_batch.py), resumable after a crash and safe to run twice."""

from __future__ import annotations

import contextvars
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from services.registry.groups import Rules
from services.registry.import_batch import PreparedBatch, write_batch
from services.registry.import_prepare import PrepareJob, prepared_batches, preparing_process
from services.registry.models import Import, ImportChunk, import_chunk_purpose
from shared.config import env_int
from shared.db import Database, utcnow
from shared.encryption import data_keys
from shared.errors import InvalidInput
from shared.events.outbox import Outbox
from shared.logs import mask_personal_data
from shared.scope import RegionScope

log = logging.getLogger(__name__)

FINAL_STATUSES = ("done", "failed")
# Enough to fix a file by; a file that is wrong on every row would otherwise make the
# import row (rewritten at each progress save) grow without bound.
MAX_LISTED_ROW_ERRORS = 1000
# Complete groups are written together once they hold this many rows: few statements per
# row, and progress saved every few thousand rows.
BATCH_ROWS = env_int("KUBE_IMPORT_BATCH_ROWS", 5000)
# How often a batch is checked and written again after losing a race for a NIK.
RACE_RETRIES = 5
# How often (seconds) the interpreter may pass from the preparing thread to the writing one
# while an import runs (Python's default is 0.005).
WRITER_SWITCH_INTERVAL = 0.0005
# A file of at least this many bytes (about 6,000 rows of CSV) is read, checked and prepared by
# a process of its own (import_prepare.py).
PROCESS_BYTES = env_int("KUBE_IMPORT_PROCESS_BYTES", 2**20)
# Stored chunks (a MiB each) read per query while the file is written back to disk.
CHUNKS_PER_READ = 8


@contextmanager
def lock_connection(db: Database):
    # Autocommit: a session-level lock needs no transaction, and an idle open transaction
    # held for the whole run would block vacuum.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection


def _run_lock_key(import_id: uuid.UUID) -> int:
    return import_id.int >> 65  # 63 bits: a positive bigint


def try_lock(connection, import_id: uuid.UUID) -> bool:
    return bool(
        connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": _run_lock_key(import_id)}
        )
    )


def unlock(connection, import_id: uuid.UUID) -> None:
    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _run_lock_key(import_id)})


@dataclass
class _Progress:
    """The counters of a run, and whether the import row already holds them."""

    processed_rows: int = 0
    groups_created: int = 0
    groups_unchanged: int = 0
    groups_rejected: int = 0
    listed_errors: list[dict] = field(default_factory=list)
    omitted_errors: int = 0
    saved_rows: int = 0
    errors_saved: bool = True

    @classmethod
    def saved_in(cls, job: Import) -> _Progress:
        """Resume from what a run that crashed had saved."""
        errors = [e for e in job.row_errors or [] if e.get("row") is not None]
        omitted = sum(e.get("omitted", 0) for e in job.row_errors or [] if e.get("row") is None)
        return cls(
            processed_rows=job.processed_rows,
            groups_created=job.groups_created,
            groups_unchanged=job.groups_unchanged,
            groups_rejected=job.groups_rejected,
            listed_errors=errors,
            omitted_errors=omitted,
            saved_rows=job.processed_rows,
        )

    def count(self, outcome: str, rows: int, errors: list[dict] | None = None) -> None:
        self.processed_rows += rows
        name = f"groups_{outcome}"
        setattr(self, name, getattr(self, name) + 1)
        if errors:
            listed = errors[: max(MAX_LISTED_ROW_ERRORS - len(self.listed_errors), 0)]
            self.listed_errors.extend(listed)
            self.omitted_errors += len(errors) - len(listed)
            self.errors_saved = False

    def columns(self) -> dict:
        values = {
            "processed_rows": self.processed_rows,
            "groups_created": self.groups_created,
            "groups_unchanged": self.groups_unchanged,
            "groups_rejected": self.groups_rejected,
        }
        if not self.errors_saved:
            values["row_errors"] = list(self.listed_errors)
            if self.omitted_errors:
                values["row_errors"].append(
                    {
                        "row": None,
                        "group": None,
                        "field": None,
                        "message": f"{self.omitted_errors} more row errors are not listed; fix "
                        "these and import the file again to see them.",
                        "omitted": self.omitted_errors,
                    }
                )
        return values

    def mark_saved(self) -> None:
        self.saved_rows = self.processed_rows
        self.errors_saved = True


@contextmanager
def decrypted_file(db: Database, import_id: uuid.UUID, file_format: str) -> Iterator[Path]:
    """The import's file, decrypted chunk by chunk into a temporary file (readable by this
    process's user only) that is deleted when the run ends; openpyxl needs a seekable file,
    and two passes over a CSV must not hold it in memory."""
    keys = data_keys()
    # openpyxl goes by the file's extension.
    with tempfile.NamedTemporaryFile(prefix="kube-import-", suffix=f".{file_format}") as file:
        seq = 0
        while True:
            with db.transaction() as session:
                chunks = session.execute(
                    select(ImportChunk.seq, ImportChunk.content_encrypted)
                    .where(ImportChunk.import_id == import_id, ImportChunk.seq >= seq)
                    .order_by(ImportChunk.seq)
                    .limit(CHUNKS_PER_READ)
                ).all()
                if not chunks and seq == 0:
                    # Stored before import_chunks: the whole file in the import's row.
                    file.write(session.get_one(Import, import_id).content)
            for chunk in chunks:
                if chunk.seq != seq:
                    raise RuntimeError(f"chunk {seq} of the import's file is missing")
                file.write(
                    keys.decrypt(
                        chunk.content_encrypted, purpose=import_chunk_purpose(import_id, seq)
                    )
                )
                seq += 1
            if len(chunks) < CHUNKS_PER_READ:
                break
        file.flush()
        yield Path(file.name)


class _Writer:
    """Writes prepared batches one at a time, in order, on a thread of its own, so that the
    next batch is checked and prepared (Python) while the database writes this one: the
    thread waits on PostgreSQL with the interpreter free. At most one batch is being written;
    `submit` waits for it before handing over the next, and raises its error."""

    def __init__(self, write: Callable[[PreparedBatch], None]):
        self._write = write
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kube-import")
        self._pending: Future | None = None
        self._switch_interval = sys.getswitchinterval()

    def submit(self, batch: PreparedBatch) -> None:
        self.wait()
        # The log context (correlation id) goes with the batch to the writing thread.
        self._pending = self._executor.submit(contextvars.copy_context().run, self._write, batch)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Writer:
        # The writing thread waits on the socket many times per batch (a COPY sends its rows
        # as PostgreSQL takes them) and after each wait needs the interpreter back from the
        # preparing thread, which by default hands it over only every 5 ms: measured, that
        # made the writes take 40% longer. A worker process runs one import at a time.
        sys.setswitchinterval(WRITER_SWITCH_INTERVAL)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                # The run stops on the reading side's error; the batch being written finishes
                # (or rolls back) before the run reports it.
                error = self._pending.exception()
                if error is not None:
                    log.error("import batch failed after the run stopped", exc_info=error)
        finally:
            self._executor.shutdown(wait=True)
            sys.setswitchinterval(self._switch_interval)


@dataclass
class _Job:
    id: uuid.UUID
    file_format: str
    scope: RegionScope
    actor: str
    progress: _Progress


class _ImportRun:
    """One pass of the worker over an import's file."""

    def __init__(self, db: Database, outbox: Outbox, job: _Job, rules: Rules):
        self.db = db
        self.outbox = outbox
        self.job = job
        self.rules = rules
        self.progress = job.progress

    def run(self) -> None:
        with decrypted_file(self.db, self.job.id, self.job.file_format) as path:
            job = PrepareJob(
                path=str(path),
                file_format=self.job.file_format,
                scope=self.job.scope,
                resume_rows=self.progress.processed_rows,
                today=date.today(),
                registered=self.outbox.preparer("group.registered"),
                rules=self.rules,
                batch_rows=BATCH_ROWS,
            )
            # A large file is prepared by a process of its own while this one writes; a small
            # one is not worth starting a process for.
            if path.stat().st_size >= PROCESS_BYTES:
                prepared = preparing_process(job)
            else:
                prepared = nullcontext(prepared_batches(job))
            with prepared as items, _Writer(self._write) as writer:
                for item in items:
                    if isinstance(item, int):
                        self._save_total(item)
                    else:
                        writer.submit(item)

    def _write(self, batch: PreparedBatch) -> None:
        """Write a batch of groups and the progress they make in one transaction, so a run
        that resumes after a crash knows exactly which groups are written."""
        for attempt in range(1, RACE_RETRIES + 1):
            progress = replace(self.progress, listed_errors=list(self.progress.listed_errors))
            try:
                with self.db.transaction() as session:
                    outcomes = write_batch(
                        session,
                        self.outbox,
                        batch,
                        scope=self.job.scope,
                        actor=self.job.actor,
                    )
                    for outcome in outcomes:
                        progress.count(outcome.outcome, outcome.group.rows, outcome.errors)
                    session.execute(
                        update(Import).where(Import.id == self.job.id).values(**progress.columns())
                    )
            except (IntegrityError, psycopg.IntegrityError) as exc:
                # A NIK joined another active group between the check and the insert: check
                # again, and that group is refused like any other whose NIK is taken. (The
                # members' COPY raises the driver's own error, statements SQLAlchemy's.)
                error = exc.orig if isinstance(exc, IntegrityError) else exc
                name = getattr(getattr(error, "diag", None), "constraint_name", "")
                if name != "uq_members_active_nik" or attempt == RACE_RETRIES:
                    raise
                continue
            self.progress = progress
            self.progress.mark_saved()
            return

    def _save_progress(self, **final) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(Import)
                .where(Import.id == self.job.id)
                .values(**self.progress.columns(), **final)
            )
        self.progress.mark_saved()

    def _save_total(self, total: int) -> None:
        with self.db.transaction() as session:
            session.execute(update(Import).where(Import.id == self.job.id).values(total_rows=total))

    def finish(self) -> None:
        self._save_progress(status="done", finished_at=utcnow())


def _start(db: Database, import_id: uuid.UUID) -> _Job | None:
    """Mark the import as processing; None if there is nothing (more) to do."""
    with db.transaction() as session:
        job = session.get(Import, import_id, with_for_update=True)
        if job is None or job.status in FINAL_STATUSES:
            return None
        progress = _Progress.saved_in(job) if job.status == "processing" else _Progress()
        job.status = "processing"
        job.started_at = job.started_at or utcnow()
        return _Job(
            id=job.id,
            file_format=job.file_format,
            scope=RegionScope(job.region_scope),
            actor=job.created_by,
            progress=progress,
        )


def _fail(db: Database, import_id: uuid.UUID, exc: Exception, detail: str | None = None) -> None:
    # Database errors quote the values they choke on; never store a NIK in full.
    message = mask_personal_data(f"{type(exc).__name__}: {exc}".splitlines()[0])[:500]
    with db.transaction() as session:
        session.execute(
            update(Import)
            .where(Import.id == import_id)
            .values(
                status="failed",
                finished_at=utcnow(),
                error=detail or f"The import stopped on an unexpected error: {message}",
            )
        )


def process_import(db: Database, outbox: Outbox, import_id: uuid.UUID, rules: Rules) -> None:
    """Create the groups of a queued import, a batch of groups per transaction; safe to run
    again."""
    with lock_connection(db) as connection:
        # Celery may deliver the same import twice (a redelivery while the first run is
        # still going); only one run at a time works on it.
        if not try_lock(connection, import_id):
            log.info("import already being processed", extra={"import_id": str(import_id)})
            return
        try:
            job = _start(db, import_id)
            if job is None:
                return
            started = time.perf_counter()
            run = _ImportRun(db, outbox, job, rules)
            try:
                run.run()
                run.finish()
            except InvalidInput as exc:
                # What only reading the whole file shows (a workbook's rows): the user's to fix.
                _fail(db, import_id, exc, detail=exc.detail)
                return
            except Exception as exc:
                log.exception("import failed", extra={"import_id": str(import_id)})
                _fail(db, import_id, exc)
                return
            seconds = time.perf_counter() - started
            progress = run.progress
            log.info(
                "import done",
                extra={
                    "import_id": str(import_id),
                    "rows": progress.processed_rows,
                    "groups_created": progress.groups_created,
                    "groups_unchanged": progress.groups_unchanged,
                    "groups_rejected": progress.groups_rejected,
                    "seconds": round(seconds, 1),
                    "rows_per_second": round(progress.processed_rows / max(seconds, 1e-9)),
                },
            )
        finally:
            unlock(connection, import_id)
