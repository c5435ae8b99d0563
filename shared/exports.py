"""Values written into spreadsheets the platform exports (CSV, XLSX): a value a spreadsheet
would run as a formula is written as text instead (CSV/formula injection)."""

from __future__ import annotations

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """`value` as an export cell: text that would start a formula gets a leading apostrophe
    (shown as text, not run); numbers and everything else pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
