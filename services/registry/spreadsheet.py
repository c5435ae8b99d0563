"""Reading an uploaded spreadsheet of groups and members: CSV (UTF-8, comma, semicolon or
tab separated) or XLSX, as text cells under a checked header. The upload's cheap checks run
on its chunks as they stream by (`UploadCheck`); the worker reads the whole file from disk
(`Sheet`). No database, no web code."""

from __future__ import annotations

import codecs
import csv
import os
import re
import warnings
import zipfile
from collections.abc import Iterator
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import BinaryIO

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
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff")
_HEADER_SEPARATORS = re.compile(r"[\s\-]+")
_DATE_COLUMNS = ("founded_on", "birth_date")
# openpyxl warns about styles and extensions it ignores; the cell values are read all the same.
warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl\.")


def file_error(message: str) -> InvalidInput:
    return InvalidInput.field("file", message, f"The file cannot be imported: {message}.")


def _detect_format(filename: str, head: bytes) -> str:
    """The file's format from its name and its first bytes."""
    extension = os.path.splitext(filename.strip().lower())[1]
    if head.startswith(_OLE_MAGIC) or extension == ".xls":
        raise file_error(
            "Excel 97-2003 workbooks (.xls) cannot be read; save the file as .xlsx or CSV UTF-8"
        )
    if extension == ".xlsx":
        if not head.startswith(_ZIP_MAGIC):
            raise file_error("the file is named .xlsx but is not an XLSX workbook")
        return "xlsx"
    if extension == ".csv":
        if head.startswith(_ZIP_MAGIC):
            raise file_error(
                "the file is named .csv but holds a workbook; upload it as .xlsx or save it "
                "as CSV UTF-8"
            )
        return "csv"
    shown = extension or "no extension"
    raise file_error(f"only .csv and .xlsx files can be imported (this one has {shown})")


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
    """The rows of an uploaded file on disk as text cells under a checked header."""

    def __init__(self, file_format: str, path: Path):
        self.file_format = file_format
        self.path = path
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
        # The upload was checked to be UTF-8 as it streamed in; utf-8-sig drops a BOM.
        with open(self.path, encoding="utf-8-sig", newline="") as text:
            delimiter = csv_delimiter(text.readline())
            text.seek(0)
            reader = csv.reader(text, delimiter=delimiter)
            number = 0
            try:
                for number, record in enumerate(reader, 1):
                    yield number, tuple(record)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise file_error(f"the CSV is malformed at row {number + 1}: {exc}") from None

    def _xlsx_rows(self) -> Iterator[tuple[int, tuple]]:
        import openpyxl

        with open(self.path, "rb") as file:
            check_archive(file)
        try:
            workbook = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
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
        return header_columns(first[1])

    def cells(self, names: tuple[str, ...]) -> Iterator[tuple[int, tuple[str, ...]]]:
        """The rows `records` yields, with only the named columns' text ("" when empty): a
        cheaper pass over a CSV for what needs a few columns."""
        if self.file_format != "csv":
            for number, record in self.records():
                yield number, tuple(record.get(name, "") for name in names)
            return
        known = list(self.columns.values())
        wanted = [self.columns[name] for name in names]
        rows = self._raw_rows()
        next(rows)  # the header, checked already
        for number, row in rows:
            width = len(row)
            if any(row[index].strip() for index in known if index < width):
                yield number, tuple(row[index].strip() if index < width else "" for index in wanted)

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


def csv_delimiter(first_line: str) -> str:
    """The header's separator: Excel in an Indonesian locale saves "CSV" with semicolons (the
    comma is the decimal mark there)."""
    return max((",", ";", "\t"), key=first_line.count)


def header_columns(cells) -> dict[str, int]:
    """The known columns of a header row and their positions; every required one present."""
    names = [_column_name(cell) for cell in cells]
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


class _TooManyRows(Exception):
    pass


def _too_many_rows():
    return file_error(
        f"the file has more than {MAX_ROWS - 1:,} data rows; split it into smaller files"
    )


def check_archive(file: BinaryIO) -> None:
    """Refuse a workbook that would unpack into far more than it weighs (a zip bomb); only
    the archive's directory (at its end) is read."""
    try:
        members = zipfile.ZipFile(file).infolist()
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
# A header row longer than this is not a header of ours: refuse it rather than buffer more.
MAX_HEADER_BYTES = 64 * 1024
# What a blank CSV row may hold: separators, quotes and white space.
_BLANK_CSV = ' \t\r\n,;"'


class UploadCheck:
    """The cheap checks of an upload, fed its chunks as they stream in: the format by name
    and first bytes; for a CSV, UTF-8 with no NUL all through, the header row, and at least
    one row that is not blank. Parsing every row, and all of a workbook, is the worker's."""

    def __init__(self, filename: str):
        self.filename = filename
        self.file_format: str | None = None
        self.size = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._lines = 0  # newlines before the current chunk, to name the row of a bad byte
        self._header: str | None = None  # the text before the header is complete
        self._header_done = False
        self._has_data = False

    def feed(self, chunk: bytes) -> None:
        """Check the next chunk of the file."""
        if not chunk:
            return
        if self.file_format is None:
            self.file_format = _detect_format(self.filename, chunk)
            self._header = ""
        if self.file_format == "csv":
            self._feed_csv(chunk)
        self.size += len(chunk)

    def _feed_csv(self, chunk: bytes) -> None:
        pending = self._decoder.getstate()[0]  # the start of a character split by the chunk
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            data = pending + chunk
            local = exc.start - len(pending)  # <0: a character begun in the last chunk
            position = self.size + local
            row = self._lines + chunk.count(b"\n", 0, max(local, 0)) + 1
            hint = (
                "it looks like UTF-16; " if self.size == 0 and chunk.startswith(_WIDE_BOMS) else ""
            )
            raise file_error(
                f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at position "
                f"{position}, row {row}); {hint}save it as CSV UTF-8"
            ) from None
        if "\x00" in text:
            # PostgreSQL text cannot hold NUL, and no spreadsheet writes it into a CSV.
            position = self.size + chunk.index(b"\x00")
            raise file_error(
                f"the file holds a NUL byte at position {position}; it is not CSV text"
            )
        self._lines += chunk.count(b"\n")
        if not self._header_done:
            self._header += text
            line, newline, rest = self._header.partition("\n")
            if not newline:
                if len(self._header) > MAX_HEADER_BYTES:
                    raise file_error(
                        f"the first row (the header) is longer than {MAX_HEADER_BYTES:,} "
                        "characters; it is not a header of this import"
                    )
                return
            self._check_csv_header(line)
            text = rest
        if not self._has_data:
            self._has_data = bool(text.strip(_BLANK_CSV))

    def _check_csv_header(self, line: str) -> None:
        self._header_done, self._header = True, None
        line = line.removeprefix("\ufeff")  # the BOM Excel writes before "CSV UTF-8"
        header = next(csv.reader([line.rstrip("\r")], delimiter=csv_delimiter(line)), [])
        header_columns(header)

    def finish(self, file: BinaryIO) -> str:
        """After the last chunk: the checks that need the whole file (`file`, seekable);
        return the file's format."""
        if self.size == 0 or self.file_format is None:
            raise file_error("the file is empty")
        if self.file_format == "xlsx":
            file.seek(0)
            check_archive(file)
            return "xlsx"
        try:
            tail = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise file_error(
                f"the file is not UTF-8 text (it ends inside a character, at position "
                f"{self.size}); save it as CSV UTF-8"
            ) from None
        if not self._header_done:
            self._check_csv_header((self._header or "") + tail)
        elif not self._has_data:
            self._has_data = bool(tail.strip(_BLANK_CSV))
        if not self._has_data:
            raise file_error(NO_DATA_ROWS)
        return "csv"
