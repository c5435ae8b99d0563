"""The registry's report figures for the province dashboard, each one SQL statement that
aggregates in PostgreSQL (GROUP BY with a ROLLUP for the total row, FILTER, percentile_cont)
and answers a handful of rows, whatever the number of groups.

Every report covers the groups whose region code starts with `prefix` (the caller's scope,
narrowed by the `region` asked for) and groups them by the first 2, 4 or 6 digits of that
code (province, regency, district). Percentages are 0-100 with one decimal; rupiah are whole
numbers."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from services.registry.models import GrantDisbursement, Group, Member, Region, Visit
from shared.events.contracts import GROUP_STATUSES
from shared.scope import RegionScope

# The length of a region code at each level a report groups by.
LEVEL_DIGITS = {"province": 2, "regency": 4, "district": 6}
# A group not visited within this many days counts as unmentored in the visits report.
VISIT_WINDOW_DAYS = 90
# Dissolved groups are no longer mentored (a visit to one is refused), so the visits report
# leaves them out.
MENTORED_STATUSES = tuple(s for s in GROUP_STATUSES if s != "dissolved")

_groups = Group.__table__
_IN_PREFIX = _groups.c.region_code.like(bindparam("prefix_pattern"), escape="/")


def report_prefix(scope: RegionScope, region: str | None) -> str:
    """The region-code prefix a report covers: the `region` asked for, inside the caller's
    scope; one outside it (a regency officer asking for the whole province included) is
    refused naming `region`, as the grant and notification reports do, so no figure is
    taken for a wider region than it covers."""
    if not region:
        return scope.prefix
    scope.require(region, field="region")
    return region


def _region_of(column, level: str):
    return func.left(column, LEVEL_DIGITS[level])


def _percent(part: int, whole: int) -> float | None:
    """`part` of `whole` as a percentage with one decimal (None when `whole` is 0: there is
    nothing to be a share of; the other services' reports answer the same)."""
    if not whole:
        return None
    exact = Decimal(part) * 100 / Decimal(whole)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _ratio(part: int, whole: int) -> float:
    """`part` per `whole` with two decimals (0 when `whole` is 0)."""
    if not whole:
        return 0.0
    exact = Decimal(part) / Decimal(whole)
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _rupiah(value: Any) -> int | None:
    """A median (percentile_cont answers a float) as whole rupiah, halves rounded up."""
    if value is None:
        return None
    return int(Decimal(str(value)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _by_region(connection: Connection, statement, prefix: str) -> tuple[list[dict], dict | None]:
    """The rows of a ROLLUP statement split into per-region rows (with the region's name
    where the region table has it) and the total row (None when nothing matched)."""
    named = statement.subquery("figures")
    regions = Region.__table__
    # Looked up by key for each of the few rows: a join made PostgreSQL hash the whole
    # region table (about 90,000 rows) for every report.
    name = select(regions.c.name).where(regions.c.code == named.c.region_code).scalar_subquery()
    with_names = select(named, name.label("region_name")).order_by(
        named.c.is_total, named.c.region_code
    )
    pattern = RegionScope(prefix).pattern
    rows = [
        dict(row) for row in connection.execute(with_names, {"prefix_pattern": pattern}).mappings()
    ]
    total = next((row for row in rows if row["is_total"]), None)
    return [row for row in rows if not row["is_total"]], total


def _rolled_up(region) -> tuple:
    """The select's region code and whether the row is ROLLUP's total row."""
    return (
        region.label("region_code"),
        (func.grouping(region) == 1).label("is_total"),
    )


def _groups_with_members():
    """Per group in the prefix: its region, status, business type and current members."""
    members = Member.__table__
    scoped = _groups.alias("scoped")
    current_members = (
        select(members.c.group_id, func.count().label("members"))
        .select_from(members.join(scoped, scoped.c.id == members.c.group_id))
        .where(
            members.c.removed_at.is_(None),
            scoped.c.region_code.like(bindparam("prefix_pattern"), escape="/"),
        )
        .group_by(members.c.group_id)
        .subquery("current_members")
    )
    return (
        select(
            _groups.c.region_code,
            _groups.c.status,
            _groups.c.business_type,
            func.coalesce(current_members.c.members, 0).label("members"),
        )
        .select_from(_groups)
        .outerjoin(current_members, current_members.c.group_id == _groups.c.id)
        .where(_IN_PREFIX)
        .subquery("per_group")
    )


def groups_by_region(connection: Connection, prefix: str, level: str) -> dict:
    """Groups by status and their current members, per region at `level` and in total."""
    per_group = _groups_with_members()
    region = _region_of(per_group.c.region_code, level)
    statement = select(
        *_rolled_up(region),
        func.count().label("groups"),
        func.coalesce(func.sum(per_group.c.members), 0).label("members"),
        *(
            func.count().filter(per_group.c.status == status).label(f"status_{status}")
            for status in GROUP_STATUSES
        ),
    ).group_by(func.rollup(region))
    rows, total = _by_region(connection, statement, prefix)

    def figures(row: dict | None) -> dict:
        row = row or {}
        return {
            "groups": row.get("groups", 0),
            "members": int(row.get("members", 0)),
            "by_status": {status: row.get(f"status_{status}", 0) for status in GROUP_STATUSES},
        }

    return {
        "rows": [_region_row(row) | figures(row) for row in rows],
        "total": figures(total),
    }


def _region_row(row: dict) -> dict:
    return {"region_code": row["region_code"], "region_name": row["region_name"]}


def business_types(connection: Connection, prefix: str) -> dict:
    """Groups and their current members per business type (compared in lower case, as the
    group list's `business_type` filter compares), the most common first."""
    per_group = _groups_with_members()
    business_type = func.lower(per_group.c.business_type)
    statement = select(
        business_type.label("business_type"),
        (func.grouping(business_type) == 1).label("is_total"),
        func.count().label("groups"),
        func.coalesce(func.sum(per_group.c.members), 0).label("members"),
    ).group_by(func.rollup(business_type))
    figures = statement.subquery("figures")
    ordered = select(figures).order_by(
        figures.c.is_total,
        figures.c.groups.desc(),
        figures.c.business_type.asc().nulls_last(),
    )
    pattern = RegionScope(prefix).pattern
    rows = connection.execute(ordered, {"prefix_pattern": pattern}).mappings().all()
    total = next((row for row in rows if row["is_total"]), None)
    return {
        "rows": [
            {
                "business_type": row["business_type"],
                "groups": row["groups"],
                "members": int(row["members"]),
            }
            for row in rows
            if not row["is_total"]
        ],
        "total": {
            "groups": total["groups"] if total else 0,
            "members": int(total["members"]) if total else 0,
        },
    }


def visits_by_region(connection: Connection, prefix: str, level: str, today: date) -> dict:
    """Mentoring per region: groups still mentored, their visits, how many were ever visited
    and how many not within the last VISIT_WINDOW_DAYS days (up to `today`)."""
    since = today - timedelta(days=VISIT_WINDOW_DAYS)
    visits = Visit.__table__
    per_group = (
        select(
            _groups.c.region_code,
            func.count(visits.c.id).label("visits"),
            func.max(visits.c.visited_on).label("last_visit"),
        )
        .select_from(_groups.outerjoin(visits, visits.c.group_id == _groups.c.id))
        .where(_IN_PREFIX, _groups.c.status.in_(MENTORED_STATUSES))
        .group_by(_groups.c.id)
        .subquery("per_group")
    )
    region = _region_of(per_group.c.region_code, level)
    recently = and_(per_group.c.last_visit >= since, per_group.c.last_visit <= today)
    statement = select(
        *_rolled_up(region),
        func.count().label("groups"),
        func.coalesce(func.sum(per_group.c.visits), 0).label("visits"),
        func.count().filter(per_group.c.visits > 0).label("groups_visited"),
        func.count()
        .filter(or_(per_group.c.last_visit.is_(None), ~recently))
        .label("groups_not_visited_recently"),
    ).group_by(func.rollup(region))
    rows, total = _by_region(connection, statement, prefix)

    def figures(row: dict | None) -> dict:
        row = row or {}
        groups, visited = row.get("groups", 0), row.get("groups_visited", 0)
        count = int(row.get("visits", 0))
        return {
            "groups": groups,
            "visits": count,
            "groups_visited": visited,
            "groups_visited_pct": _percent(visited, groups),
            "visits_per_group": _ratio(count, groups),
            "groups_not_visited_recently": row.get("groups_not_visited_recently", 0),
        }

    return {
        "as_of": today,
        "window_days": VISIT_WINDOW_DAYS,
        "rows": [_region_row(row) | figures(row) for row in rows],
        "total": figures(total),
    }


def _median(column: ColumnElement, condition: ColumnElement) -> ColumnElement:
    return func.percentile_cont(0.5).within_group(column).filter(condition)


def revenue_by_region(connection: Connection, prefix: str, level: str) -> dict:
    """The median monthly revenue reported at visits before and after each group's first
    grant was paid, per region at `level` and in total."""
    disbursements = GrantDisbursement.__table__
    visits = Visit.__table__
    first_grant = (
        select(
            disbursements.c.group_id,
            func.min(disbursements.c.disbursed_on).label("disbursed_on"),
        )
        .group_by(disbursements.c.group_id)
        .subquery("first_grant")
    )
    # A visit on the day of the transfer tells of the business before the money could work.
    before = visits.c.visited_on <= first_grant.c.disbursed_on
    after = visits.c.visited_on > first_grant.c.disbursed_on
    per_group = (
        select(
            _groups.c.region_code,
            _median(visits.c.monthly_revenue, before).label("before"),
            _median(visits.c.monthly_revenue, after).label("after"),
        )
        .select_from(_groups)
        .join(first_grant, first_grant.c.group_id == _groups.c.id)
        .outerjoin(
            visits,
            and_(visits.c.group_id == _groups.c.id, visits.c.monthly_revenue.is_not(None)),
        )
        .where(_IN_PREFIX)
        .group_by(_groups.c.id)
        .subquery("per_group")
    )
    compared = and_(per_group.c.before.is_not(None), per_group.c.after.is_not(None))
    region = _region_of(per_group.c.region_code, level)
    statement = select(
        *_rolled_up(region),
        func.count().label("groups_with_grant"),
        func.count().filter(compared).label("groups_compared"),
        func.count()
        .filter(compared, per_group.c.after > per_group.c.before)
        .label("groups_improved"),
        _median(per_group.c.before, compared).label("median_before"),
        _median(per_group.c.after, compared).label("median_after"),
    ).group_by(func.rollup(region))
    rows, total = _by_region(connection, statement, prefix)

    def figures(row: dict | None) -> dict:
        row = row or {}
        compared_groups = row.get("groups_compared", 0)
        improved = row.get("groups_improved", 0)
        return {
            "groups_with_grant": row.get("groups_with_grant", 0),
            "groups_compared": compared_groups,
            "median_revenue_before": _rupiah(row.get("median_before")),
            "median_revenue_after": _rupiah(row.get("median_after")),
            "groups_improved": improved,
            "groups_improved_pct": _percent(improved, compared_groups),
        }

    return {
        "rows": [_region_row(row) | figures(row) for row in rows],
        "total": figures(total),
    }
