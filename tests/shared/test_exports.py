"""Exported cells never run as formulas (pure logic)."""

from __future__ import annotations

import pytest

from shared.exports import safe_cell


@pytest.mark.parametrize(
    "value", ['=HYPERLINK("http://x","klik")', "+62812", "-1+1", "@SUM(A1)", "\t=1"]
)
def test_text_that_would_start_a_formula_is_written_as_text(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["KUBE Tempe", "081234567890", 2_000_000, -5, None, ""])
def test_everything_else_passes_unchanged(value):
    assert safe_cell(value) == value
