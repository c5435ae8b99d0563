"""The official Kemendagri region table: read it from its CSV, load it, look codes up in it.

Plain domain logic over SQLAlchemy, no Flask. The table is reference data an administrator
loads (`kube regions load`); until then codes are checked for structure only.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Iterable
from typing import IO, NamedTuple

from sqlalchemy import Engine, Select, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.registry.identity import IdentityError, parse_region_code
from services.registry.models import Region
from shared.db import driver_cursor

LEVELS = ("province", "regency", "district", "village")
MAX_REPORTED_PROBLEMS = 50
_HEADER = ["code", "name"]
_NAME_MAX_LENGTH = Region.__table__.c.name.type.length
_UTF8_BOM = b"\xef\xbb\xbf"
# UTF-16 and UTF-32 files start with one of these; every line after would be garbage.
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


class RegionFileError(ValueError):
    """A region file that cannot be loaded, with its problems (the first 50) by line."""

    def __init__(self, problems: list[str], total: int | None = None):
        self.problems = problems[:MAX_REPORTED_PROBLEMS]
        self.total = len(problems) if total is None else total
        plural = "" if self.total == 1 else "s"
        super().__init__(f"the region file has {self.total} problem{plural}; first: {problems[0]}")


class RegionRow(NamedTuple):
    """One region as the table stores it: plain code, name, level and plain parent code."""

    code: str
    name: str
    level: str
    parent_code: str | None


def read_region_csv(source: str | os.PathLike | IO[bytes] | IO[str]) -> list[RegionRow]:
    """Read a UTF-8 `code,name` CSV of dotted codes, or raise RegionFileError with every problem."""
    lines, problems = _decoded_lines(source)
    bad_lines = {line for line, _ in problems}
    rows: list[RegionRow] = []
    row_lines: list[int] = []
    first_seen: dict[str, int] = {}
    reader = csv.reader(lines)
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if start == 1:
                if [field.strip().lower() for field in record] != _HEADER:
                    found = ",".join(record)[:60]
                    problems.append((1, f"the header must be code,name (found {found!r})"))
                    _raise(problems)
                continue
            # Blank lines carry nothing; lines that are not UTF-8 are reported already.
            if not record or start in bad_lines:
                continue
            row = _read_row(record, start, first_seen, problems)
            if row is not None:
                rows.append(row)
                row_lines.append(start)
    except csv.Error as exc:
        # The reader cannot resynchronise after a broken record, so stop here.
        problems.append((end + 1, f"the CSV is malformed: {exc}"))
    if end == 0:
        problems.append((1, "the file is empty; it must start with the header code,name"))
    elif not rows and not problems:
        problems.append((2, "the file holds no regions"))
    for row, line in zip(rows, row_lines, strict=True):
        if row.parent_code is not None and row.parent_code not in first_seen:
            problems.append(
                (line, f"{_dotted(row.code)} has no parent {_dotted(row.parent_code)} in the file")
            )
    if problems:
        _raise(problems)
    return rows


def load_regions(bind: Engine | Session, rows: Iterable[RegionRow]) -> dict[str, int]:
    """Make the region table hold exactly `rows` (with a Session, the caller commits)."""
    rows = list(rows)
    if not rows:
        raise ValueError("no regions to load; refusing to empty the region table")
    if isinstance(bind, Session):
        changed, removed = _replace_table(bind.connection(), rows)
    else:
        with bind.begin() as connection:
            changed, removed = _replace_table(connection, rows)
    per_level = Counter(row.level for row in rows)
    return {
        **{level: per_level[level] for level in LEVELS},
        "total": len(rows),
        "changed": changed,
        "removed": removed,
    }


def region_table_loaded(session: Session) -> bool:
    """Tell whether the official region table has been loaded."""
    return bool(session.scalar(select(select(Region.code).exists())))


def check_village(session: Session, code: str, field: str = "region_code") -> str | None:
    """Why a village code is missing from the loaded region table; None if present or unloaded."""
    try:
        plain = parse_region_code(code, field=field, level="village").code
    except IdentityError as exc:
        return exc.message
    # One round trip answers both questions: is the code there, is anything there.
    known, loaded = session.execute(
        select(
            select(Region.code).where(Region.code == plain).exists(),
            select(Region.code).exists(),
        )
    ).one()
    if known or not loaded:
        return None
    return f"{field} {plain} is not in the loaded region table"


def list_regions(parent: str | None) -> Select[tuple[Region]]:
    """The provinces (no parent) or the direct children of a plain `parent` code, by code."""
    condition = Region.parent_code.is_(None) if parent is None else Region.parent_code == parent
    return select(Region).where(condition).order_by(Region.code)


def _decoded_lines(
    source: str | os.PathLike | IO[bytes] | IO[str],
) -> tuple[list[str], list[tuple[int, str]]]:
    """The file's lines as text, and a problem for each line that is not UTF-8."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as file:
            data = file.read()
    else:
        try:
            data = source.read()
        except UnicodeDecodeError as exc:
            raise RegionFileError([f"the file is not {exc.encoding} text: {exc.reason}"]) from exc
    if isinstance(data, str):
        # Text the caller decoded goes through the same per-line check; surrogates fail it.
        data = data.encode("utf-8", errors="surrogatepass")
    if data.startswith(_WIDE_BOMS):
        raise RegionFileError(["line 1: the file is UTF-16 or UTF-32 text; save it as UTF-8"])
    lines: list[str] = []
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(data.removeprefix(_UTF8_BOM).splitlines(keepends=True), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append(
                (number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")
            )
            lines.append(raw.decode("utf-8", errors="replace"))
    return lines, problems


def _read_row(
    record: list[str], line: int, first_seen: dict[str, int], problems: list[tuple[int, str]]
) -> RegionRow | None:
    if len(record) != 2:
        problems.append((line, f"expected 2 columns (code,name), found {len(record)}"))
        return None
    code_text, name = (field.strip() for field in record)
    try:
        region = parse_region_code(code_text, field="code")
    except IdentityError as exc:
        problems.append((line, f"{exc.message} (found {code_text[:20]!r})"))
        return None
    if region.code in first_seen:
        problems.append(
            (line, f"code {region.dotted} appears again (first on line {first_seen[region.code]})")
        )
        return None
    # Recorded even when the name is bad, so its children are not reported as orphans too.
    first_seen[region.code] = line
    if not name:
        problems.append((line, f"the name of {region.dotted} is empty"))
        return None
    if len(name) > _NAME_MAX_LENGTH:
        problems.append(
            (line, f"the name of {region.dotted} is over {_NAME_MAX_LENGTH} characters")
        )
        return None
    return RegionRow(region.code, name, region.level, region.parent)


def _raise(problems: list[tuple[int, str]]) -> None:
    ordered = sorted(problems, key=lambda problem: problem[0])
    raise RegionFileError(
        [f"line {line}: {message}" for line, message in ordered[:MAX_REPORTED_PROBLEMS]],
        total=len(ordered),
    )


def _dotted(code: str) -> str:
    return parse_region_code(code).dotted


_UPSERT = """
    INSERT INTO regions (code, name, level, parent_code)
    SELECT code, name, level, parent_code FROM incoming_regions
    ON CONFLICT (code) DO UPDATE
    SET name = EXCLUDED.name, level = EXCLUDED.level, parent_code = EXCLUDED.parent_code
    -- Unchanged rows are left alone, so a reload of the same table writes nothing.
    WHERE (regions.name, regions.level, regions.parent_code)
        IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.level, EXCLUDED.parent_code)
"""
_DELETE_MISSING = """
    DELETE FROM regions
    WHERE NOT EXISTS (SELECT 1 FROM incoming_regions WHERE incoming_regions.code = regions.code)
"""


def _replace_table(connection: Connection, rows: list[RegionRow]) -> tuple[int, int]:
    """Copy the rows into a temporary table, then upsert and delete; return (changed, removed)."""
    # COPY through psycopg itself: row-by-row INSERTs take minutes for the full table.
    with driver_cursor(connection) as cursor:
        # One load at a time; EXCLUSIVE still lets readers, such as village checks, through.
        cursor.execute("LOCK TABLE regions IN EXCLUSIVE MODE")
        cursor.execute(
            "CREATE TEMPORARY TABLE incoming_regions (LIKE regions INCLUDING DEFAULTS) "
            "ON COMMIT DROP"
        )
        with cursor.copy(
            "COPY incoming_regions (code, name, level, parent_code) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(_UPSERT)
        changed = cursor.rowcount
        cursor.execute(_DELETE_MISSING)
        removed = cursor.rowcount
        # Dropped now, not only at commit, so a second load in one transaction works.
        cursor.execute("DROP TABLE incoming_regions")
        # A bulk change leaves the planner's statistics stale until autovacuum notices.
        cursor.execute("ANALYZE regions")
    return changed, removed
