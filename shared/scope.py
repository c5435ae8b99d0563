"""Region scope: the one policy every query and lookup of every service goes through.

A scope is a Kemendagri code prefix ("" is nationwide, "64" a province, "6472" a city). A
record lies inside a scope when its region code starts with the prefix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from shared.errors import InvalidInput, NotFound


@dataclass(frozen=True)
class RegionScope:
    prefix: str = ""

    @property
    def nationwide(self) -> bool:
        return self.prefix == ""

    def covers(self, region_code: str | None) -> bool:
        """Whether a record in `region_code` lies inside this scope."""
        return self.nationwide or (region_code or "").startswith(self.prefix)

    def where(self, column: Any) -> ColumnElement[bool]:
        """The SQL condition that keeps a query inside this scope."""
        if self.nationwide:
            return true()
        return column.startswith(self.prefix, autoescape=True)

    @property
    def pattern(self) -> str:
        """The LIKE pattern (escape character `/`) of the region codes inside this scope, for a
        statement built once and bound to any scope (the same test as `where`)."""
        escaped = self.prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
        return escaped + "%"

    def one(self, session: Session, statement: Select, column: Any, *, what: str) -> Any:
        """The single row `statement` finds inside the scope, or NotFound (existence never
        leaks: another region's object is as absent as a missing one)."""
        found = session.scalar(statement.where(self.where(column)))
        if found is None:
            raise NotFound(f"No {what} with this id in your region.")
        return found

    def require(self, region_code: str, *, field: str) -> None:
        """Refuse input that would place a record outside the scope."""
        if not self.covers(region_code):
            raise InvalidInput.field(field, f"The region {region_code} lies outside your region.")


NATIONWIDE = RegionScope("")
