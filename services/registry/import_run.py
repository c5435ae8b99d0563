"""Running an import: the worker's pass over a queued file, one transaction per group,
resumable after a crash and safe to run twice."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from services.registry.groups import Rules
from services.registry.import_check import (
    CheckedGroup,
    GroupRejected,
    check_group,
    group_key,
    row_errors,
)
from services.registry.membership import register_group_with_members
from services.registry.models import Group, Import
from services.registry.spreadsheet import NO_DATA_ROWS, Sheet, file_error
from shared.db import Database, utcnow
from shared.errors import DomainError, InvalidInput
from shared.events.outbox import Outbox
from shared.logs import mask_personal_data
from shared.scope import RegionScope

log = logging.getLogger(__name__)

FINAL_STATUSES = ("done", "failed")
# Enough to fix a file by; a file that is wrong on every row would otherwise make the
# import row (rewritten at each progress save) grow without bound.
MAX_LISTED_ROW_ERRORS = 1000
# Rejected and unchanged groups write nothing, so their progress is saved this often.
PROGRESS_EVERY_ROWS = 200
# Separate key spaces: the one-argument lock form (a run of one import) never meets the
# two-argument form (one group's name in one village).
_GROUP_LOCK_SPACE = 0x4B554245  # "KUBE"


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


@dataclass
class _Job:
    id: uuid.UUID
    file_format: str
    content: bytes
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
        sheet = Sheet(self.job.file_format, self.job.content)
        # First pass: where each group's last row is, so the second pass can write a group
        # as soon as it is complete and keep only unfinished groups in memory.
        last_row, total = {}, 0
        for number, record in sheet.records():
            last_row[group_key(record)] = number
            total += 1
        if total == 0:
            raise file_error(NO_DATA_ROWS)
        self._save_total(total)
        pending: dict[tuple[str, str], list] = {}
        seen_niks: dict[str, int] = {}
        # A redelivered run skips the groups the crashed one saved, in the same order.
        resume_rows, skipped_rows = self.progress.processed_rows, 0
        for number, record in sheet.records():
            key = group_key(record)
            pending.setdefault(key, []).append((number, record))
            if last_row[key] != number:
                continue
            rows = pending.pop(key)
            if skipped_rows + len(rows) <= resume_rows:
                skipped_rows += len(rows)
                seen_niks.update((r["nik"], n) for n, r in rows if "nik" in r)
                continue
            self._handle(check_group(rows, self.job.scope, seen_niks))
            if self.progress.processed_rows - self.progress.saved_rows >= PROGRESS_EVERY_ROWS:
                self._save_progress()

    def _handle(self, group: CheckedGroup) -> None:
        if group.errors:
            self.progress.count("rejected", len(group.rows), group.errors)
            return
        # The counters move in the group's own transaction, so a run that resumes after a
        # crash knows exactly which groups are written.
        progress = replace(self.progress)
        progress.count("created", len(group.rows))
        try:
            with self.db.transaction() as session:
                if self._exists(session, group):
                    outcome = "unchanged"
                else:
                    outcome = "created"
                    self._create(session, group)
                    session.execute(
                        update(Import).where(Import.id == self.job.id).values(**progress.columns())
                    )
        except GroupRejected as rejected:
            self.progress.count("rejected", len(group.rows), rejected.errors)
            return
        if outcome == "created":
            self.progress = progress
            self.progress.mark_saved()
        else:
            self.progress.count("unchanged", len(group.rows))

    def _exists(self, session: Session, group: CheckedGroup) -> bool:
        region_code = group.data["region_code"]
        # Two imports of the same file at once must not both create the group.
        session.execute(
            select(
                func.pg_advisory_xact_lock(
                    _GROUP_LOCK_SPACE, func.hashtext(f"{region_code}:{group.name.lower()}")
                )
            )
        )
        existing = session.scalar(
            select(Group.id)
            .where(
                Group.region_code == region_code,
                func.lower(Group.name) == group.name.lower(),
                Group.status != "dissolved",
            )
            .limit(1)
        )
        return existing is not None

    def _create(self, session: Session, group: CheckedGroup) -> None:
        rows = [number for number, _ in group.members]
        try:
            register_group_with_members(
                session,
                self.outbox,
                dict(group.data),
                [dict(data) for _, data in group.members],
                self.rules,
                scope=self.job.scope,
                actor=self.job.actor,
            )
        except DomainError as exc:  # a rule of the registry refused the group
            raise GroupRejected(row_errors(group, rows, exc)) from None

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
            content=job.content,
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
    """Create the groups of a queued import, one transaction per group; safe to run again."""
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
