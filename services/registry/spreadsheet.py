"""Reading an uploaded spreadsheet of groups and members: CSV (UTF-8, comma, semicolon or
tab separated) or XLSX, as text cells under a checked header. No database, no web code."""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from datetime import time as clock_time

from shared.errors import InvalidInput

# Bounds that keep one upload from taking a worker or the API for minutes, or gigabytes.
MAX_ROWS = 250_001  # the header and 250,000 members, above any real programme's import
MAX_XLSX_UNPACKED_BYTES = 256 * 2**20
MAX_COMPRESSION_RATIO = 100

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
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # Excel 97-2003 .xls and other legacy Office files
_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HEADER_SEPARATORS = re.compile(r"[\s\-]+")
_DATE_COLUMNS = ("founded_on", "birth_date")
# openpyxl warns about styles and extensions it ignores; the cell values are read all the same.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")


def file_error(message: str) -> InvalidInput:
    return InvalidInput.field("file", message, f"The file cannot be imported: {message}.")


def _detect_format(filename: str, content: bytes) -> str:
    extension = os.path.splitext(filename.strip().lower())[1]
    if not content:
        raise file_error("the file is empty")
    if content.startswith(_OLE_MAGIC) or extension == ".xls":
        raise file_error(
            "Excel 97-2003 workbooks (.xls) cannot be read; save the file as .xlsx or CSV UTF-8"
        )
    if extension == ".xlsx":
        if not content.startswith(_ZIP_MAGIC):
            raise file_error("the file is named .xlsx but is not an XLSX workbook")
        return "xlsx"
    if extension == ".csv":
        if content.startswith(_ZIP_MAGIC):
            raise file_error(
                "the file is named .csv but holds a workbook; upload it as .xlsx or save it "
                "as CSV UTF-8"
            )
        return "csv"
    shown = extension or "no extension"
    raise file_error(f"only .csv and .xlsx files can be imported (this one has {shown})")


def _decode_csv(content: bytes) -> str:
    body = content.removeprefix(_UTF8_BOM)
    offset = len(content) - len(body)
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        position = offset + exc.start
        row = content.count(b"\n", 0, position) + 1
        hint = "it looks like UTF-16; " if content.startswith(_WIDE_BOMS) else ""
        raise file_error(
            f"the file is not UTF-8 text (byte 0x{content[position]:02x} at position "
            f"{position}, row {row}); {hint}save it as CSV UTF-8"
        ) from None
    if "\x00" in decoded:
        # PostgreSQL text cannot hold NUL, and no spreadsheet writes it into a CSV.
        position = content.index(b"\x00")
        raise file_error(f"the file holds a NUL byte at position {position}; it is not CSV text")
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
        for number, record in self._csv_records():
            if number > MAX_ROWS:
                raise _too_many_rows()
            yield number, record

    def _csv_records(self) -> Iterator[tuple[int, tuple]]:
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
            raise file_error(f"the CSV is malformed at row {number + 1}: {exc}") from None

    def _xlsx_rows(self) -> Iterator[tuple[int, tuple]]:
        import openpyxl

        _check_archive(self.content)
        try:
            workbook = openpyxl.load_workbook(
                io.BytesIO(self.content), read_only=True, data_only=True
            )
            try:
                sheet = workbook.worksheets[0]
                # The stored dimensions are often wrong (files written by other tools); read
                # what the sheet actually holds.
                sheet.reset_dimensions()
                for number, row in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1):
                    if number > MAX_ROWS:
                        # A sheet may declare a row far away (r="20000000"): reading up to it
                        # would take the worker for minutes.
                        raise _TooManyRows()
                    yield number, row
            finally:
                workbook.close()
        except _TooManyRows:
            raise _too_many_rows() from None
        except Exception as exc:
            # A damaged workbook fails in zipfile, XML parsing or openpyxl itself.
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise file_error(f"the file is not a readable XLSX workbook ({reason})") from None

    def _read_header(self) -> dict[str, int]:
        rows = self._raw_rows()
        try:
            first = next(rows, None)
        finally:
            rows.close()
        if first is None:
            raise file_error("the file is empty")
        names = [_column_name(cell) for cell in first[1]]
        if not any(names):
            raise file_error("the first row must be the header, but it is empty")
        columns: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in REQUIRED_COLUMNS or name in OPTIONAL_COLUMNS:
                if name in columns:
                    raise file_error(f"the column {name} appears twice in the header")
                columns[name] = index
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise file_error(
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


class _TooManyRows(Exception):
    pass


def _too_many_rows():
    return file_error(
        f"the file has more than {MAX_ROWS - 1:,} data rows; split it into smaller files"
    )


def _check_archive(content: bytes) -> None:
    """Refuse a workbook that would unpack into far more than it weighs (a zip bomb)."""
    try:
        members = zipfile.ZipFile(io.BytesIO(content)).infolist()
    except zipfile.BadZipFile as exc:
        raise file_error(f"the file is not a readable XLSX workbook ({exc})") from None
    total = sum(m.file_size for m in members)
    if total > MAX_XLSX_UNPACKED_BYTES:
        raise file_error(
            f"the workbook unpacks to {total // 2**20} MiB, more than "
            f"{MAX_XLSX_UNPACKED_BYTES // 2**20} MiB; save it as CSV UTF-8"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 2**20 and ratio > MAX_COMPRESSION_RATIO:
            raise file_error(
                f"the workbook's part {member.filename} is compressed {ratio:.0f} to 1, "
                "which no spreadsheet needs; save the file again as .xlsx or CSV UTF-8"
            )


NO_DATA_ROWS = "the file has a header but no data rows"


def inspect_upload(filename: str, content: bytes) -> tuple[str, int | None]:
    """Check that an upload can be imported; return its format and its number of data rows.

    A CSV is text already in memory and is counted here. A workbook is checked here only as
    far as its archive and header: parsing all of it is the worker's job, within the task's
    time and memory limits, and it counts the rows then (None until it does)."""
    file_format = _detect_format(filename, content)
    sheet = Sheet(file_format, content)
    if file_format == "xlsx":
        return file_format, None
    count = sum(1 for _ in sheet.records())
    if count == 0:
        raise file_error(NO_DATA_ROWS)
    return file_format, count
