"""A table as pages show it and as it downloads: CSV (UTF-8, Excel's BOM) or XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook

# Text a spreadsheet would run as a formula (group names are typed by people).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # a message id of the catalogue (i18n.py)
    kind: str = "text"  # text, int, money, pct, days, date, link
    link: Callable[[dict[str, Any]], str | None] | None = None


@dataclass
class Table:
    name: str  # stable: the download's file name and route
    title: str  # a message id
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None  # a message id, e.g. "only the first 500 are listed"


def cell_value(value: Any) -> Any:
    """A value safe in a spreadsheet cell: numbers as numbers, formula-like text quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ya" if value else "tidak"
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_csv(table: Table, headers: list[str]) -> bytes:
    """The table as CSV, with a BOM so Excel reads UTF-8 names right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in table.rows:
        writer.writerow([cell_value(row.get(c.key)) for c in table.columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(table: Table, headers: list[str], sheet_title: str) -> bytes:
    """The table as one XLSX sheet."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(sheet_title))
    sheet.append(headers)
    for row in table.rows:
        sheet.append([cell_value(row.get(c.key)) for c in table.columns])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _sheet_title(text: str) -> str:
    # Excel: at most 31 characters, none of []:*?/\
    cleaned = "".join(ch for ch in text if ch not in "[]:*?/\\")
    return cleaned[:31] or "Sheet"
