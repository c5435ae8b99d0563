"""The registry's busiest reads, each one SQL statement (one round trip to PostgreSQL) that
returns what the API answers, already in its JSON form (strings for ids, dates and times), so
no ORM object is loaded and no marshmallow schema dumps it. The shapes are exactly those of
`GroupSchema`, `GroupDetailSchema` and `MembershipSchema` (tests dump one through the other
and compare)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row
from sqlalchemy import Connection, any_, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import aggregate_order_by, array
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session

from services.registry.groups import OFFICER_ROLES
from services.registry.identity import mask_nik
from services.registry.mentoring import TREND_POINTS, summarise_visits
from services.registry.models import NIK_PURPOSE, Group, Member, Visit, nik_lookup
from shared.db import driver_cursor
from shared.encryption import data_keys
from shared.scope import RegionScope

# The scope condition is a bound LIKE pattern, so each statement is built (and compiled)
# once, whatever the caller's region.
_IN_SCOPE = Group.region_code.like(bindparam("scope_pattern"), escape="/")
# A plain connection (`Database.reading`: no ORM session around one statement), or the
# request's session when a write must see its own uncommitted rows.
Executor = Connection | Session


# Each statement's SQL and its fixed values, compiled once (`_fetch`).
_DIALECT = postgresql_psycopg.dialect()
_COMPILED: dict[Any, tuple[str, dict[str, Any]]] = {}


def _fetch(connection: Executor, statement, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one of these statements, as dicts. On a reading connection its SQL goes
    straight to the driver: SQLAlchemy's execution context and result rows cost about as much
    as PostgreSQL's whole run of a group read (measured here: 543 against 265 µs a call). In a
    session (a write reading its own rows) it goes through the session."""
    if not isinstance(connection, Connection):
        return [dict(row) for row in connection.execute(statement, values).mappings()]
    compiled = _COMPILED.get(statement)
    if compiled is None:
        sql = statement.compile(dialect=_DIALECT)
        compiled = _COMPILED[statement] = (str(sql), dict(sql.params))
    sql, fixed = compiled
    with driver_cursor(connection, row_factory=dict_row) as cursor:
        return cursor.execute(sql, {**fixed, **values}).fetchall()


def _json_value(value: Any) -> Any:
    """A column's value as marshmallow's UUID, Date and AwareDateTime fields dump it."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _member_summary(groups):
    """Per group row: its current members' count and its officers by role."""
    return (
        select(
            func.count().label("member_count"),
            func.json_object_agg(
                Member.role, func.json_build_object("member_id", Member.id, "name", Member.name)
            )
            # = ANY of an array rather than IN: a fixed list of bound values, so the statement
            # compiles once to SQL that needs nothing more at execution (`_fetch`).
            .filter(Member.role == any_(array(OFFICER_ROLES)))
            .label("officers"),
        )
        .where(Member.group_id == groups.c.id, Member.removed_at.is_(None))
        .lateral("member_summary")
    )


def _recent_visits(groups):
    """Per group row: its latest visits (newest first) as [visited_on, topics, revenue]."""
    recent = (
        select(Visit.visited_on, Visit.topics, Visit.monthly_revenue, Visit.created_at)
        .where(Visit.group_id == groups.c.id)
        .order_by(Visit.visited_on.desc(), Visit.created_at.desc())
        .limit(TREND_POINTS * 2)
        # A subquery in FROM is not correlated by itself: without this it would read every
        # group's visits.
        .correlate(groups)
        .subquery("recent")
    )
    return (
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(
                        recent.c.visited_on, recent.c.topics, recent.c.monthly_revenue
                    ),
                    recent.c.visited_on.desc(),
                    recent.c.created_at.desc(),
                )
            )
        )
        .scalar_subquery()
        .label("recent_visits")
    )


_GROUP_COLUMNS = (
    "id",
    "name",
    "region_code",
    "address",
    "business_type",
    "founded_on",
    "status",
    "status_reason",
    "version",
    "created_at",
    "updated_at",
)


def _group_body(row) -> dict:
    """A group row with its member summary, as `GroupSchema` shows it."""
    body = {name: _json_value(row[name]) for name in _GROUP_COLUMNS}
    body["bank_account"] = (
        {
            "bank_name": row["bank_name"],
            "account_number": row["bank_account_number"],
            "account_holder": row["bank_account_holder"],
        }
        if row["bank_account_number"]
        else None
    )
    body["member_count"] = row["member_count"]
    body["officers"] = {
        role: {"member_id": officer["member_id"], "name": officer["name"]}
        for role, officer in (row["officers"] or {}).items()
        if role in OFFICER_ROLES
    }
    return body


def _build_group_detail():
    groups = Group.__table__
    summary = _member_summary(groups)
    return (
        select(groups, summary.c.member_count, summary.c.officers, _recent_visits(groups))
        .select_from(groups)
        .outerjoin(summary, true())
        .where(groups.c.id == bindparam("group_id"), _IN_SCOPE)
    )


_GROUP_DETAIL = _build_group_detail()


def group_detail(connection: Executor, group_id: uuid.UUID, scope: RegionScope) -> dict | None:
    """The group as `GET /groups/{id}` shows it (members counted, officers, last visit and
    revenue trend), or None when it does not exist in the caller's region."""
    rows = _fetch(connection, _GROUP_DETAIL, {"group_id": group_id, "scope_pattern": scope.pattern})
    if not rows:
        return None
    (row,) = rows
    visits = [
        {"visited_on": visited_on, "topics": topics, "monthly_revenue": revenue}
        for visited_on, topics, revenue in row["recent_visits"] or ()
    ]
    return {**_group_body(row), **summarise_visits(visits)}


def _build_group_page(filters: dict):
    """The statement of one page of groups matching `filters` (which filters, not their
    values), with the total of all that match."""
    groups = Group.__table__
    conditions = [_IN_SCOPE]
    if "region" in filters:
        conditions.append(groups.c.region_code.like(bindparam("region_pattern"), escape="/"))
    if "status" in filters:
        conditions.append(groups.c.status == bindparam("status"))
    if "business_type" in filters:
        conditions.append(func.lower(groups.c.business_type) == bindparam("business_type"))
    if "q" in filters:
        conditions.append(groups.c.name.ilike(bindparam("name_pattern"), escape="\\"))
    newest_first = (groups.c.created_at.desc(), groups.c.id)
    page = (
        select(groups)
        .where(*conditions)
        .order_by(*newest_first)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    total = select(func.count()).select_from(groups).where(*conditions).scalar_subquery()
    summary = _member_summary(page)
    return (
        select(page, summary.c.member_count, summary.c.officers, total.label("total"))
        .select_from(page)
        .outerjoin(summary, true())
        .order_by(page.c.created_at.desc(), page.c.id)
    )


_GROUP_PAGES: dict[frozenset[str], Any] = {}


def group_page(connection: Executor, scope: RegionScope, filters: dict) -> dict:
    """A page of the groups in the caller's region, newest first, as `GET /groups` answers
    it; `filters` are the query's (region, status, business_type, q, page, page_size)."""
    used = frozenset(k for k in ("region", "status", "business_type", "q") if filters.get(k))
    statement = _GROUP_PAGES.get(used)
    if statement is None:
        statement = _GROUP_PAGES[used] = _build_group_page(used)
    page, page_size = filters["page"], filters["page_size"]
    values: dict[str, Any] = {
        "scope_pattern": scope.pattern,
        "limit": page_size,
        "offset": (page - 1) * page_size,
    }
    if "region" in used:
        values["region_pattern"] = RegionScope(filters["region"]).pattern
    if "status" in used:
        values["status"] = filters["status"]
    if "business_type" in used:
        values["business_type"] = filters["business_type"].lower()
    if "q" in used:
        text = filters["q"].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        values["name_pattern"] = f"%{text}%"
    rows = _fetch(connection, statement, values)
    return {
        "items": [_group_body(row) for row in rows],
        "page": page,
        "page_size": page_size,
        "total": _total(connection, statement, values, rows, page),
    }


def _total(connection: Executor, statement, values: dict, rows, page: int) -> int:
    """The total a page's rows carry; past the last page (no rows) the first page's row
    carries it, which costs a second statement only then."""
    if rows:
        return rows[0]["total"]
    if page == 1:
        return 0
    first = _fetch(connection, statement, {**values, "limit": 1, "offset": 0})
    return first[0]["total"] if first else 0


def _build_memberships():
    groups = Group.__table__
    members = Member.__table__
    conditions = (members.c.nik_hash == bindparam("nik_hash"), _IN_SCOPE)
    page = (
        select(
            members.c.id,
            members.c.nik_encrypted,
            members.c.name,
            members.c.role,
            members.c.active,
            members.c.removed_at,
            members.c.group_id,
            members.c.created_at,
            groups.c.name.label("group_name"),
            groups.c.status.label("group_status"),
            groups.c.region_code.label("group_region_code"),
        )
        .join(groups, groups.c.id == members.c.group_id)
        .where(*conditions)
        .order_by(members.c.active.desc(), members.c.created_at.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .subquery("page")
    )
    total = (
        select(func.count())
        .select_from(members.join(groups, groups.c.id == members.c.group_id))
        .where(*conditions)
        .scalar_subquery()
    )
    return select(page, total.label("total")).order_by(
        page.c.active.desc(), page.c.created_at.desc()
    )


_MEMBERSHIPS = _build_memberships()


def membership_page(connection: Executor, nik: str, scope: RegionScope, page: int, page_size: int):
    """A person's memberships (current first, then the newest) in groups of the caller's
    region, found by the NIK's keyed hash, as `GET /members?nik=` answers them."""
    values = {
        "nik_hash": nik_lookup(nik),
        "scope_pattern": scope.pattern,
        "limit": page_size,
        "offset": (page - 1) * page_size,
    }
    rows = _fetch(connection, _MEMBERSHIPS, values)
    keys = data_keys()
    items = [
        {
            "member_id": str(row["id"]),
            "nik": mask_nik(keys.decrypt_text(row["nik_encrypted"], purpose=NIK_PURPOSE)),
            "name": row["name"],
            "role": row["role"],
            "active": row["active"],
            "removed_at": _json_value(row["removed_at"]),
            "group_id": str(row["group_id"]),
            "group_name": row["group_name"],
            "group_status": row["group_status"],
            "group_region_code": row["group_region_code"],
        }
        for row in rows
    ]
    return {
        "items": items,
        "page": page,
        "page_size": page_size,
        "total": _total(connection, _MEMBERSHIPS, values, rows, page),
    }
