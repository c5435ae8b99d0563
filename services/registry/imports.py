"""Bulk imports: a CSV or XLSX of groups and their members, checked at upload, written by
the worker one group per transaction.

Plain domain logic over SQLAlchemy, no Flask. One row per member; the group's columns repeat
on each of its rows. A group with any bad row is rejected whole; a group that already exists
(same name, any case, in the same village, not dissolved) is left unchanged, so a file can be
imported again without duplicating anything.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as clock_time

import marshmallow as ma
from sqlalchemy import Select, func, select, text, update
from sqlalchemy.orm import Session

from services.registry.groups import Rules
from services.registry.membership import register_group_with_members
from services.registry.models import Group, Import
from services.registry.schemas import GroupWriteSchema, MemberWriteSchema
from shared.db import Database, utcnow
from shared.errors import ApiError, NotFound, Unprocessable, flatten_messages
from shared.events.outbox import Outbox
from shared.logs import mask_personal_data

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("group_name", "village_code", "nik", "kk_number", "name", "phone", "role")
OPTIONAL_COLUMNS = (
    "address",
    "business_type",
    "founded_on",
    "gender",
    "birth_date",
    "email",
    "language",
)
GROUP_DETAIL_COLUMNS = ("address", "business_type", "founded_on")
MEMBER_COLUMNS = (
    "nik",
    "kk_number",
    "name",
    "phone",
    "role",
    "gender",
    "birth_date",
    "email",
    "language",
)
FINAL_STATUSES = ("done", "failed")
# Enough to fix a file by; a file that is wrong on every row would otherwise make the
# import row (rewritten at each progress save) grow without bound.
MAX_LISTED_ROW_ERRORS = 1000
# Rejected and unchanged groups write nothing, so their progress is saved this often.
PROGRESS_EVERY_ROWS = 200
QUEUED_TOO_LONG = timedelta(seconds=60)

# What the schemas call a field, as the file's header names its column.
_GROUP_FIELD_COLUMNS = {"name": "group_name", "region_code": "village_code"}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # Excel 97-2003 .xls and other legacy Office files
_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HEADER_SEPARATORS = re.compile(r"[\s\-]+")
_DATE_COLUMNS = ("founded_on", "birth_date")
# Separate key spaces: the one-argument lock form (a run of one import) never meets the
# two-argument form (one group's name in one village).
_GROUP_LOCK_SPACE = 0x4B554245  # "KUBE"

# openpyxl warns about styles and extensions it ignores; the cell values are read all the same.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")

_group_schema = GroupWriteSchema()
_member_schema = MemberWriteSchema()


# --- Reading the file -----------------------------------------------------------------------


def _file_error(message: str) -> Unprocessable:
    return Unprocessable.field("file", message, f"The file cannot be imported: {message}.")


def _detect_format(filename: str, content: bytes) -> str:
    extension = os.path.splitext(filename.strip().lower())[1]
    if not content:
        raise _file_error("the file is empty")
    if content.startswith(_OLE_MAGIC) or extension == ".xls":
        raise _file_error(
            "Excel 97-2003 workbooks (.xls) cannot be read; save the file as .xlsx or CSV UTF-8"
        )
    if extension == ".xlsx":
        if not content.startswith(_ZIP_MAGIC):
            raise _file_error("the file is named .xlsx but is not an XLSX workbook")
        return "xlsx"
    if extension == ".csv":
        if content.startswith(_ZIP_MAGIC):
            raise _file_error(
                "the file is named .csv but holds a workbook; upload it as .xlsx or save it "
                "as CSV UTF-8"
            )
        return "csv"
    shown = extension or "no extension"
    raise _file_error(f"only .csv and .xlsx files can be imported (this one has {shown})")


def _decode_csv(content: bytes) -> str:
    body = content.removeprefix(_UTF8_BOM)
    offset = len(content) - len(body)
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        position = offset + exc.start
        row = content.count(b"\n", 0, position) + 1
        hint = "it looks like UTF-16; " if content.startswith(_WIDE_BOMS) else ""
        raise _file_error(
            f"the file is not UTF-8 text (byte 0x{content[position]:02x} at position "
            f"{position}, row {row}); {hint}save it as CSV UTF-8"
        ) from None
    if "\x00" in decoded:
        # PostgreSQL text cannot hold NUL, and no spreadsheet writes it into a CSV.
        position = content.index(b"\x00")
        raise _file_error(f"the file holds a NUL byte at position {position}; it is not CSV text")
    return decoded


def _column_name(value: object) -> str:
    return _HEADER_SEPARATORS.sub("_", str(value if value is not None else "").strip().lower())


def _xlsx_text(value: object, column: str) -> str:
    """A cell of a workbook as the text a CSV would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        if column in _DATE_COLUMNS or value.time() == clock_time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | clock_time):
        return value.isoformat()
    if isinstance(value, int | float):
        # Numbers typed into a sheet lose their text: 6472...0001 stays exact as an integer,
        # but a phone 0812... arrives as 812..., so its leading zero is put back.
        digits = str(int(value)) if float(value).is_integer() else str(value)
        if column == "phone" and digits.startswith("8"):
            digits = "0" + digits
        return digits
    return str(value).strip()


class Sheet:
    """The rows of an uploaded file as text cells under a checked header."""

    def __init__(self, file_format: str, content: bytes):
        self.file_format = file_format
        self.content = content
        self._text = _decode_csv(content) if file_format == "csv" else None
        self.columns = self._read_header()

    def _raw_rows(self) -> Iterator[tuple[int, tuple]]:
        """Every row with its number as a spreadsheet shows it (the header is row 1)."""
        if self.file_format == "csv":
            yield from self._csv_rows()
        else:
            yield from self._xlsx_rows()

    def _csv_rows(self) -> Iterator[tuple[int, tuple]]:
        assert self._text is not None
        first_line = self._text.split("\n", 1)[0]
        # Excel in an Indonesian locale saves "CSV" with semicolons (the comma is the
        # decimal mark there), so take the header's separator.
        delimiter = max((",", ";", "\t"), key=first_line.count)
        reader = csv.reader(io.StringIO(self._text, newline=""), delimiter=delimiter)
        number = 0
        try:
            for number, record in enumerate(reader, 1):
                yield number, tuple(record)
        except csv.Error as exc:
            raise _file_error(f"the CSV is malformed at row {number + 1}: {exc}") from None

    def _xlsx_rows(self) -> Iterator[tuple[int, tuple]]:
        import openpyxl

        try:
            workbook = openpyxl.load_workbook(
                io.BytesIO(self.content), read_only=True, data_only=True
            )
            try:
                sheet = workbook.worksheets[0]
                # The stored dimensions are often wrong (files written by other tools); read
                # what the sheet actually holds.
                sheet.reset_dimensions()
                yield from enumerate(sheet.iter_rows(min_row=1, values_only=True), 1)
            finally:
                workbook.close()
        except Exception as exc:
            # A damaged workbook fails in zipfile, XML parsing or openpyxl itself.
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise _file_error(f"the file is not a readable XLSX workbook ({reason})") from None

    def _read_header(self) -> dict[str, int]:
        rows = self._raw_rows()
        try:
            first = next(rows, None)
        finally:
            rows.close()
        if first is None:
            raise _file_error("the file is empty")
        names = [_column_name(cell) for cell in first[1]]
        if not any(names):
            raise _file_error("the first row must be the header, but it is empty")
        columns: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in REQUIRED_COLUMNS or name in OPTIONAL_COLUMNS:
                if name in columns:
                    raise _file_error(f"the column {name} appears twice in the header")
                columns[name] = index
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise _file_error(
                f"the header lacks the required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} (required: {', '.join(REQUIRED_COLUMNS)})"
            )
        return columns

    def records(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Each data row that is not blank: its row number and its known columns as text."""
        columns = list(self.columns.items())
        to_text = _xlsx_text if self.file_format == "xlsx" else None
        rows = self._raw_rows()
        next(rows)  # the header, checked already
        for number, row in rows:
            width = len(row)
            record = {}
            for name, index in columns:
                value = row[index] if index < width else None
                cell = to_text(value, name) if to_text else (value or "").strip()
                if cell:
                    record[name] = cell
            if record:
                yield number, record


def inspect_upload(filename: str, content: bytes) -> tuple[str, int]:
    """Check that an upload can be imported; return its format and its number of data rows."""
    file_format = _detect_format(filename, content)
    count = sum(1 for _ in Sheet(file_format, content).records())
    if count == 0:
        raise _file_error("the file has a header but no data rows")
    return file_format, count


# --- The import resource --------------------------------------------------------------------


def create_import(
    session: Session, *, filename: str, content: bytes, region_scope: str, actor: str
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
        region_scope=region_scope,
        created_by=actor,
        created_at=utcnow(),
        total_rows=rows,
        processed_rows=0,
        groups_created=0,
        groups_unchanged=0,
        groups_rejected=0,
        row_errors=[],
    )
    session.add(job)
    session.flush()
    return job


def scoped_imports(region_scope: str) -> Select:
    """Imports the caller's region covers: those made within it (an admin's "" covers all)."""
    statement = select(Import)
    if region_scope:
        statement = statement.where(Import.region_scope.startswith(region_scope))
    return statement


def list_imports(region_scope: str) -> Select:
    """The caller's imports, newest first."""
    return scoped_imports(region_scope).order_by(Import.created_at.desc(), Import.id)


def find_import(session: Session, import_id: uuid.UUID, region_scope: str) -> Import:
    """The import, if the caller's region covers it; otherwise a 404."""
    job = session.scalar(scoped_imports(region_scope).where(Import.id == import_id))
    if job is None:
        raise NotFound("No import with this id in your region.")
    return job


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
    with _lock_connection(db) as connection:
        for import_id in processing:
            if _try_lock(connection, import_id):
                _unlock(connection, import_id)
                orphaned.append(import_id)
    return [*queued, *orphaned]


# --- Processing -----------------------------------------------------------------------------


@contextmanager
def _lock_connection(db: Database):
    # Autocommit: a session-level lock needs no transaction, and an idle open transaction
    # held for the whole run would block vacuum.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        yield connection


def _run_lock_key(import_id: uuid.UUID) -> int:
    return import_id.int >> 65  # 63 bits: a positive bigint


def _try_lock(connection, import_id: uuid.UUID) -> bool:
    return bool(
        connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": _run_lock_key(import_id)}
        )
    )


def _unlock(connection, import_id: uuid.UUID) -> None:
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
class _Group:
    """The rows of one group in the file, checked: what to create, or why not."""

    name: str
    rows: list[tuple[int, dict[str, str]]]
    data: dict | None = None
    members: list[tuple[int, dict]] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)

    def error(self, row: int, field_name: str, message: str) -> None:
        self.errors.append(
            {"row": row, "group": self.name, "field": field_name, "message": message}
        )


def _row_errors(group: _Group, rows: list[int], exc: ApiError) -> list[dict]:
    """Point the domain's `members.<index>.<field>` problems at the file's rows."""
    entries = exc.errors or [{"field": "row", "message": exc.detail or exc.title}]
    errors = []
    for entry in entries:
        parts = entry["field"].split(".")
        if len(parts) == 3 and parts[0] == "members":
            row, column = rows[int(parts[1])], parts[2]
        else:
            row, column = group.rows[0][0], _GROUP_FIELD_COLUMNS.get(entry["field"], entry["field"])
        errors.append(
            {"row": row, "group": group.name, "field": column, "message": entry["message"]}
        )
    return errors


class _GroupRejected(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} row errors")
        self.errors = errors


def _plain_name(name: str) -> str:
    return " ".join(name.split())


def _group_key(record: dict[str, str]) -> tuple[str, str]:
    village = re.sub(r"[.\s]", "", record.get("village_code", ""))
    return _plain_name(record.get("group_name", "")).lower(), village


def _member_input(record: dict[str, str]) -> dict[str, str]:
    data = {column: record[column] for column in MEMBER_COLUMNS if column in record}
    # Spreadsheet users write Ketua, f, ID: the values are case-insensitive.
    for column, normalize in (("role", str.lower), ("gender", str.upper), ("language", str.lower)):
        if column in data:
            data[column] = normalize(data[column])
    return data


def _check_group(
    rows: list[tuple[int, dict[str, str]]], region_scope: str, seen_niks: dict[str, int]
) -> _Group:
    """Validate a group's rows with the API's own schemas, collecting every problem."""
    first_row, first = rows[0]
    group = _Group(name=_plain_name(first.get("group_name", "")), rows=rows)
    details = {"name": group.name, "region_code": first.get("village_code", "")}
    details.update({c: first[c] for c in GROUP_DETAIL_COLUMNS if c in first})
    try:
        group.data = _group_schema.load({k: v for k, v in details.items() if v})
    except ma.ValidationError as exc:
        for entry in flatten_messages(exc.messages):
            column = _GROUP_FIELD_COLUMNS.get(entry["field"], entry["field"])
            group.error(first_row, column, entry["message"])
    else:
        if region_scope and not group.data["region_code"].startswith(region_scope):
            group.error(
                first_row,
                "village_code",
                f"village {group.data['region_code']} lies outside your region {region_scope}",
            )
    for number, record in rows:
        for column in GROUP_DETAIL_COLUMNS:
            if record.get(column, "") != first.get(column, ""):
                group.error(
                    number,
                    column,
                    f"{column} differs from row {first_row} of the same group; every row of a "
                    "group repeats the same group details",
                )
        try:
            member = _member_schema.load(_member_input(record))
        except ma.ValidationError as exc:
            for entry in flatten_messages(exc.messages):
                group.error(number, entry["field"], entry["message"])
            continue
        group.members.append((number, member))
        if member["nik"] in seen_niks:
            group.error(number, "nik", f"the same NIK is also on row {seen_niks[member['nik']]}")
        else:
            seen_niks[member["nik"]] = number
    return group


@dataclass
class _Job:
    id: uuid.UUID
    file_format: str
    content: bytes
    region_scope: str
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
        last_row = {_group_key(record): number for number, record in sheet.records()}
        pending: dict[tuple[str, str], list] = {}
        seen_niks: dict[str, int] = {}
        # A redelivered run skips the groups the crashed one saved, in the same order.
        resume_rows, skipped_rows = self.progress.processed_rows, 0
        for number, record in sheet.records():
            key = _group_key(record)
            pending.setdefault(key, []).append((number, record))
            if last_row[key] != number:
                continue
            rows = pending.pop(key)
            if skipped_rows + len(rows) <= resume_rows:
                skipped_rows += len(rows)
                seen_niks.update((r["nik"], n) for n, r in rows if "nik" in r)
                continue
            self._handle(_check_group(rows, self.job.region_scope, seen_niks))
            if self.progress.processed_rows - self.progress.saved_rows >= PROGRESS_EVERY_ROWS:
                self._save_progress()

    def _handle(self, group: _Group) -> None:
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
        except _GroupRejected as rejected:
            self.progress.count("rejected", len(group.rows), rejected.errors)
            return
        if outcome == "created":
            self.progress = progress
            self.progress.mark_saved()
        else:
            self.progress.count("unchanged", len(group.rows))

    def _exists(self, session: Session, group: _Group) -> bool:
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

    def _create(self, session: Session, group: _Group) -> None:
        rows = [number for number, _ in group.members]
        try:
            register_group_with_members(
                session,
                self.outbox,
                dict(group.data),
                [dict(data) for _, data in group.members],
                self.rules,
                region_scope=self.job.region_scope,
                actor=self.job.actor,
            )
        except ApiError as exc:
            raise _GroupRejected(_row_errors(group, rows, exc)) from None

    def _save_progress(self, **final) -> None:
        with self.db.transaction() as session:
            session.execute(
                update(Import)
                .where(Import.id == self.job.id)
                .values(**self.progress.columns(), **final)
            )
        self.progress.mark_saved()

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
            region_scope=job.region_scope,
            actor=job.created_by,
            progress=progress,
        )


def _fail(db: Database, import_id: uuid.UUID, exc: Exception) -> None:
    # Database errors quote the values they choke on; never store a NIK in full.
    message = mask_personal_data(f"{type(exc).__name__}: {exc}".splitlines()[0])[:500]
    with db.transaction() as session:
        session.execute(
            update(Import)
            .where(Import.id == import_id)
            .values(
                status="failed",
                finished_at=utcnow(),
                error=f"The import stopped on an unexpected error: {message}",
            )
        )


def process_import(db: Database, outbox: Outbox, import_id: uuid.UUID, rules: Rules) -> None:
    """Create the groups of a queued import, one transaction per group; safe to run again."""
    with _lock_connection(db) as connection:
        # Celery may deliver the same import twice (a redelivery while the first run is
        # still going); only one run at a time works on it.
        if not _try_lock(connection, import_id):
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
            _unlock(connection, import_id)
