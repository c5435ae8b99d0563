"""Region scope: the one policy every query goes through (pure logic, no server)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql

from shared.auth import Principal
from shared.errors import InvalidInput
from shared.scope import NATIONWIDE, RegionScope

groups = Table("groups", MetaData(), Column("region_code", String(10)))


def test_a_scope_covers_codes_under_its_prefix_only():
    scope = RegionScope("6472")
    assert scope.covers("6472011001")
    assert not scope.covers("6471011001")
    assert not scope.covers(None)
    assert NATIONWIDE.covers("3374011001")


def test_a_principal_queries_through_its_region_scope():
    assert Principal("a", frozenset({"pendamping"}), "6472").scope == RegionScope("6472")


def test_the_sql_condition_is_a_prefix_match_and_nationwide_adds_none():
    scoped = select(groups).where(RegionScope("6472").where(groups.c.region_code))
    sql = str(scoped.compile(dialect=postgresql.dialect()))
    assert "LIKE" in sql
    nationwide = select(groups).where(NATIONWIDE.where(groups.c.region_code))
    assert "LIKE" not in str(nationwide.compile(dialect=postgresql.dialect()))


def test_input_outside_the_scope_is_a_field_error():
    with pytest.raises(InvalidInput) as raised:
        RegionScope("6472").require("6471011001", field="region_code")
    assert raised.value.errors == [
        {"field": "region_code", "message": "The region 6471011001 lies outside your region."}
    ]
    RegionScope("6472").require("6472011001", field="region_code")
