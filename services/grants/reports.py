"""The grant service's figures for a dashboard: the pipeline by stage, time spent per stage in
working days, overdue applications, budget absorption, usage reports on time and decision
rates. Each is aggregated in SQL (a few statements per report, never rows counted in Python),
limited to one region prefix (the caller's scope, or a narrower `region` inside it) and, where
the figure is per region, grouped by the first 2, 4 or 6 digits of the region code.

Percentages are numbers from 0 to 100 with one decimal; a rate whose base is zero is None."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import bindparam, case, func, select, text
from sqlalchemy.orm import Session

from services.grants.calendar import WorkingCalendar
from services.grants.models import FINAL_STAGES, BudgetMovement, Grant, Program
from services.grants.programs import visible_programs
from shared.events.contracts import GRANT_STAGES
from shared.scope import RegionScope
from shared.timezones import WIT, WITA, provinces_in

# A region level and the digits of the Kemendagri code that name a region at it.
LEVEL_DIGITS = {"province": 2, "regency": 4, "district": 6}
# Stages an application leaves again, in route order (both routes' stages).
OPEN_STAGES = tuple(s for s in GRANT_STAGES if s not in FINAL_STAGES)


@dataclass(frozen=True)
class ReportFilter:
    """What a report counts: applications whose region starts with `prefix`, optionally of one
    programme or fiscal year, grouped by region at `level` (None: no regional rows)."""

    prefix: str = ""
    level: str | None = None
    program_id: uuid.UUID | None = None
    fiscal_year: int | None = None

    @property
    def digits(self) -> int:
        return LEVEL_DIGITS[self.level] if self.level else 0

    def values(self) -> dict:
        """The bound values of the statements' shared conditions on `grants g`: in the region,
        of the programme and of the fiscal year (each None for any), and the time zones."""
        return {
            "region_pattern": RegionScope(self.prefix).pattern,
            "digits": self.digits,
            "program_id": self.program_id,
            "fiscal_year": self.fiscal_year,
            "wita": provinces_in(WITA),
            "wit": provinces_in(WIT),
        }


# The conditions every report's statement puts on `grants g`, bound by ReportFilter.values:
# in the caller's region, of the programme and of the fiscal year (each NULL for any). One
# text, so no report can count other rows than the rest (or another region's).
_REPORTED_GRANTS = """g.region_code LIKE :region_pattern ESCAPE '/'
    AND (CAST(:program_id AS uuid) IS NULL OR g.program_id = CAST(:program_id AS uuid))
    AND (CAST(:fiscal_year AS integer) IS NULL
         OR g.program_id IN (SELECT id FROM programs
                             WHERE fiscal_year = CAST(:fiscal_year AS integer)))"""


def _without_jit(session: Session) -> None:
    """Turn off PostgreSQL's JIT compilation for the rest of the request's transaction: on
    these one-off aggregations over ~10^5 rows, compiling costs seconds and saves less."""
    session.execute(text("SET LOCAL jit = off"))


def percent(part: int, whole: int) -> float | None:
    """`part` as a percentage of `whole` with one decimal (half up); None when `whole` is 0."""
    if not whole:
        return None
    share = Decimal(100 * part) / Decimal(whole)
    return float(share.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _one_decimal(value: float | None) -> float | None:
    if value is None:
        return None
    return float(Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _regional(rows: dict[str, dict], shape) -> list[dict]:
    """Regional rows in code order, each completed by `shape(region_code, figures)`."""
    return [shape(code, figures) for code, figures in sorted(rows.items())]


# The pipeline


def pipeline(session: Session, report: ReportFilter) -> dict:
    """Applications and their amounts at each stage, in total, per region and per programme."""
    _without_jit(session)
    values = report.values()
    rows = session.execute(
        text(
            f"""
            SELECT s.stage, s.region_key, s.program_id,
                   GROUPING(s.region_key) AS no_region, GROUPING(s.program_id) AS no_program,
                   count(*) AS count, sum(s.amount) AS amount
            FROM (SELECT g.stage, g.amount, g.program_id,
                         left(g.region_code, :digits) AS region_key
                  FROM grants g WHERE {_REPORTED_GRANTS}
                 ) AS s
            GROUP BY GROUPING SETS ((s.stage), (s.stage, s.region_key), (s.stage, s.program_id))
            """  # noqa: S608 (one fixed text: _REPORTED_GRANTS)
        ),
        values,
    ).all()
    total: dict[str, tuple[int, int]] = {}
    regions: dict[str, dict] = {}
    programs: dict[uuid.UUID, dict] = {}
    for row in rows:
        figures = (row.count, int(row.amount or 0))
        if row.no_region and row.no_program:
            total[row.stage] = figures
        elif not row.no_region:
            regions.setdefault(row.region_key, {})[row.stage] = figures
        else:
            programs.setdefault(row.program_id, {})[row.stage] = figures

    def stages(found: dict) -> dict:
        listed = [
            {"stage": s, "count": found.get(s, (0, 0))[0], "amount": found.get(s, (0, 0))[1]}
            for s in GRANT_STAGES
        ]
        return {
            "total": {
                "count": sum(c["count"] for c in listed),
                "amount": sum(c["amount"] for c in listed),
            },
            "stages": listed,
        }

    known = {
        p.id: p
        for p in session.execute(
            select(Program.id, Program.name, Program.fiscal_year, Program.funding_source).where(
                Program.id.in_(list(programs))
            )
        )
    }
    return {
        **_echo(report),
        **stages(total),
        "regions": _regional(regions, lambda code, f: {"region_code": code, **stages(f)})
        if report.level
        else [],
        "programs": [
            {
                "program_id": pid,
                "name": known[pid].name,
                "fiscal_year": known[pid].fiscal_year,
                "funding_source": known[pid].funding_source,
                **stages(found),
            }
            for pid, found in sorted(
                programs.items(), key=lambda kv: (-known[kv[0]].fiscal_year, known[kv[0]].name)
            )
        ],
    }


def _echo(report: ReportFilter) -> dict:
    return {
        "region": report.prefix,
        "level": report.level,
        "program_id": report.program_id,
        "fiscal_year": report.fiscal_year,
    }


# Time spent per stage, in working days


def _history_days(session: Session) -> tuple[date, date] | None:
    """The first and last day any history record falls on, with a day's margin either side
    for the time zones; None while there is no history."""
    first, last = session.execute(text("SELECT min(at), max(at) FROM grant_audit")).one()
    if first is None:
        return None
    return first.date() - timedelta(days=1), last.date() + timedelta(days=1)


def stage_durations(session: Session, report: ReportFilter) -> dict:
    """Per stage: completed stays and their median and 90th percentile in working days."""
    _without_jit(session)
    values = report.values()
    days = _history_days(session)
    rows = []
    if days is not None:
        first, last = days
        # A stay runs from the step entering a stage to the next step of the history. Its
        # working days are counted as deadlines are, on the same calendar: the working days
        # after the local day it began, up to and including the local day it ended, in the
        # region's zone. (The scoped applications are materialised first: the planner cannot
        # estimate the `seq + 1` pairing and would otherwise look each pair's application up by
        # index, 10^5 times over.) The calendar numbers each day of the period, so a stay is the
        # difference of two numbers looked up by the day's offset from `first`.
        numbers = WorkingCalendar.load(session).working_day_numbers(first, last)
        rows = session.execute(
            text(
                f"""
                WITH scoped AS MATERIALIZED (
                    SELECT g.id, left(g.region_code, :digits) AS region_key,
                           CASE WHEN left(g.region_code, 2) = ANY(CAST(:wita AS text[]))
                                THEN 'Asia/Makassar'
                              WHEN left(g.region_code, 2) = ANY(CAST(:wit AS text[]))
                                THEN 'Asia/Jayapura'
                              ELSE 'Asia/Jakarta' END AS zone
                    FROM grants g
                    WHERE {_REPORTED_GRANTS}
                ),
                stays AS (
                    SELECT s.region_key, s.zone, entered.to_stage AS stage,
                           entered.at AS entered_at, left_by.at AS left_at
                    FROM scoped s
                    JOIN grant_audit entered ON entered.grant_id = s.id
                    JOIN grant_audit left_by
                      ON left_by.grant_id = entered.grant_id AND left_by.seq = entered.seq + 1
                ),
                working AS (
                    SELECT region_key, stage,
                           (CAST(:numbers AS integer[]))
                               [((left_at AT TIME ZONE zone)::date - CAST(:first AS date)) + 1]
                           - (CAST(:numbers AS integer[]))
                               [((entered_at AT TIME ZONE zone)::date - CAST(:first AS date)) + 1]
                               AS days
                    FROM stays
                )
                SELECT stage, region_key, GROUPING(region_key) AS no_region, count(*) AS stays,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY days) AS median,
                       percentile_cont(0.9) WITHIN GROUP (ORDER BY days) AS p90
                FROM working
                GROUP BY GROUPING SETS ((stage), (stage, region_key))
                """  # noqa: S608 (one fixed text: _REPORTED_GRANTS)
            ),
            {**values, "numbers": numbers, "first": first},
        ).all()
    total: dict[str, object] = {}
    regions: dict[str, dict] = {}
    for row in rows:
        if row.no_region:
            total[row.stage] = row
        else:
            regions.setdefault(row.region_key, {})[row.stage] = row

    def stages(found: dict) -> list[dict]:
        return [
            {
                "stage": stage,
                "stays": found[stage].stays if stage in found else 0,
                "median_working_days": _one_decimal(found[stage].median)
                if stage in found
                else None,
                "p90_working_days": _one_decimal(found[stage].p90) if stage in found else None,
            }
            for stage in OPEN_STAGES
        ]

    return {
        **_echo(report),
        "stages": stages(total),
        "regions": _regional(regions, lambda code, f: {"region_code": code, "stages": stages(f)})
        if report.level
        else [],
    }


# Overdue applications


def overdue(session: Session, report: ReportFilter, now: datetime) -> dict:
    """Open applications past their stage's due time, and those with a due time, per stage."""
    _without_jit(session)
    values = report.values()
    rows = session.execute(
        text(
            f"""
            SELECT s.stage, s.region_key, GROUPING(s.region_key) AS no_region,
                   count(*) FILTER (WHERE s.due_at < :now) AS overdue,
                   count(*) AS with_deadline
            FROM (SELECT g.stage, g.due_at, left(g.region_code, :digits) AS region_key
                  FROM grants g
                  WHERE g.due_at IS NOT NULL AND g.stage NOT IN :final
                    AND {_REPORTED_GRANTS}
                 ) AS s
            GROUP BY GROUPING SETS ((s.stage), (s.stage, s.region_key))
            """  # noqa: S608 (one fixed text: _REPORTED_GRANTS)
        ).bindparams(bindparam("final", expanding=True)),
        {**values, "now": now, "final": list(FINAL_STAGES)},
    ).all()
    total: dict[str, tuple[int, int]] = {}
    regions: dict[str, dict] = {}
    for row in rows:
        target = total if row.no_region else regions.setdefault(row.region_key, {})
        target[row.stage] = (row.overdue, row.with_deadline)

    def stages(found: dict) -> dict:
        listed = [
            {
                "stage": s,
                "overdue": found.get(s, (0, 0))[0],
                "with_deadline": found.get(s, (0, 0))[1],
            }
            for s in OPEN_STAGES
        ]
        overdue_count = sum(s["overdue"] for s in listed)
        running = sum(s["with_deadline"] for s in listed)
        return {
            "total": {
                "overdue": overdue_count,
                "with_deadline": running,
                "overdue_pct": percent(overdue_count, running),
            },
            "stages": listed,
        }

    return {
        **_echo(report),
        "as_of": now,
        **stages(total),
        "regions": _regional(regions, lambda code, f: {"region_code": code, **stages(f)})
        if report.level
        else [],
    }


# Budgets


def budgets(session: Session, report: ReportFilter) -> dict:
    """Each programme the region takes part in: its whole budget as the ledger keeps it, and
    what of it is reserved for and disbursed to the region's applications."""
    _without_jit(session)
    scope = RegionScope(report.prefix)
    # The ledger's reserve adds to what is reserved; release and disburse take it away again.
    reserved = func.sum(
        case(
            (BudgetMovement.kind == "reserve", BudgetMovement.amount),
            else_=-BudgetMovement.amount,
        )
    )
    in_region = (
        select(
            BudgetMovement.program_id,
            reserved.label("reserved"),
            func.coalesce(
                func.sum(BudgetMovement.amount).filter(BudgetMovement.kind == "disburse"), 0
            ).label("disbursed"),
        )
        .join(Grant, Grant.id == BudgetMovement.grant_id)
        .where(scope.where(Grant.region_code))
        .group_by(BudgetMovement.program_id)
        .subquery()
    )
    statement = (
        visible_programs(scope)
        .with_only_columns(
            Program.id,
            Program.name,
            Program.fiscal_year,
            Program.funding_source,
            Program.region_code,
            Program.total_budget,
            Program.reserved,
            Program.disbursed,
            func.coalesce(in_region.c.reserved, 0).label("region_reserved"),
            func.coalesce(in_region.c.disbursed, 0).label("region_disbursed"),
        )
        .select_from(Program)
        .outerjoin(in_region, in_region.c.program_id == Program.id)
        .order_by(Program.fiscal_year.desc(), Program.name, Program.id)
    )
    if report.fiscal_year is not None:
        statement = statement.where(Program.fiscal_year == report.fiscal_year)
    programs = []
    for row in session.execute(statement):
        total, reserved, disbursed = row.total_budget, row.reserved, row.disbursed
        region_disbursed = int(row.region_disbursed)
        programs.append(
            {
                "program_id": row.id,
                "name": row.name,
                "fiscal_year": row.fiscal_year,
                "funding_source": row.funding_source,
                "program_region_code": row.region_code,
                "total_budget": total,
                "reserved": reserved,
                "disbursed": disbursed,
                "available": total - reserved - disbursed,
                "absorption_pct": percent(disbursed, total),
                "region_reserved": int(row.region_reserved),
                "region_disbursed": region_disbursed,
                "region_absorption_pct": percent(region_disbursed, total),
            }
        )
    sums = {
        key: sum(p[key] for p in programs)
        for key in ("total_budget", "reserved", "disbursed", "available")
    }
    region_sums = {
        key: sum(p[key] for p in programs) for key in ("region_reserved", "region_disbursed")
    }
    return {
        "region": report.prefix,
        "fiscal_year": report.fiscal_year,
        "total": {
            **sums,
            "absorption_pct": percent(sums["disbursed"], sums["total_budget"]),
            **region_sums,
            "region_absorption_pct": percent(region_sums["region_disbursed"], sums["total_budget"]),
        },
        "programs": programs,
    }


# Usage reports (LPJ)


def usage_reports(session: Session, report: ReportFilter, now: datetime) -> dict:
    """Disbursed applications by the fate of their usage report: in on time, in late, overdue
    (not in, past due) or not yet due; and the share in on time of those due or in."""
    _without_jit(session)
    values = report.values()
    # Due at the end of the transfer date plus the programme's report period, in the region's
    # zone, as the `disbursed` stage's due time is set; "in" is the first `report` step.
    rows = session.execute(
        text(
            f"""
            SELECT s.region_key, GROUPING(s.region_key) AS no_region,
                   count(*) AS disbursed,
                   count(*) FILTER (WHERE s.reported_at <= s.due_at) AS reported_on_time,
                   count(*) FILTER (WHERE s.reported_at > s.due_at) AS reported_late,
                   count(*) FILTER (WHERE s.reported_at IS NULL AND s.due_at <= :now) AS overdue,
                   count(*) FILTER (WHERE s.reported_at IS NULL AND s.due_at > :now)
                       AS not_yet_due
            FROM (SELECT left(g.region_code, :digits) AS region_key,
                         (g.transfer_date + p.report_due_days + 1)::timestamp
                             AT TIME ZONE
                             (CASE WHEN left(g.region_code, 2) = ANY(CAST(:wita AS text[]))
                                THEN 'Asia/Makassar'
                              WHEN left(g.region_code, 2) = ANY(CAST(:wit AS text[]))
                                THEN 'Asia/Jayapura'
                              ELSE 'Asia/Jakarta' END) AS due_at,
                         reports.first_at AS reported_at
                  FROM grants g JOIN programs p ON p.id = g.program_id
                  LEFT JOIN (SELECT grant_id, min(at) AS first_at FROM grant_audit
                             WHERE action = 'report' GROUP BY grant_id) AS reports
                    ON reports.grant_id = g.id
                  WHERE g.transfer_date IS NOT NULL
                    AND {_REPORTED_GRANTS}
                 ) AS s
            GROUP BY GROUPING SETS ((), (s.region_key))
            """  # noqa: S608 (one fixed text: _REPORTED_GRANTS)
        ),
        {**values, "now": now},
    ).all()

    def figures(row) -> dict:
        counts = {
            key: getattr(row, key) if row is not None else 0
            for key in ("disbursed", "reported_on_time", "reported_late", "overdue", "not_yet_due")
        }
        due = counts["reported_on_time"] + counts["reported_late"] + counts["overdue"]
        return {**counts, "on_time_pct": percent(counts["reported_on_time"], due)}

    total = next((row for row in rows if row.no_region), None)
    regions = {row.region_key: row for row in rows if not row.no_region}
    return {
        **_echo(report),
        "as_of": now,
        "total": figures(total),
        "regions": _regional(regions, lambda code, row: {"region_code": code, **figures(row)})
        if report.level
        else [],
    }


# Decisions


DECISION_COUNTS = (
    "submissions",
    "returns",
    "verifications",
    "recommendations",
    "decided",
    "approved",
    "rejected",
    "reports",
    "report_returns",
)


def decisions(session: Session, report: ReportFilter) -> dict:
    """Counts of the history's decisive steps and the rates made of them."""
    _without_jit(session)
    values = report.values()
    rows = session.execute(
        text(
            f"""
            SELECT left(g.region_code, :digits) AS region_key,
                   GROUPING(left(g.region_code, :digits)) AS no_region,
                   count(*) FILTER (WHERE a.action = 'submit') AS submissions,
                   count(*) FILTER (WHERE a.action = 'return') AS returns,
                   count(*) FILTER (WHERE a.action = 'verify') AS verifications,
                   count(*) FILTER (WHERE a.action = 'recommend') AS recommendations,
                   count(DISTINCT a.grant_id) FILTER (WHERE a.action IN ('approve', 'reject'))
                       AS decided,
                   count(DISTINCT a.grant_id) FILTER (WHERE a.action = 'approve') AS approved,
                   count(DISTINCT a.grant_id) FILTER (WHERE a.action = 'reject') AS rejected,
                   count(*) FILTER (WHERE a.action = 'report') AS reports,
                   count(*) FILTER (WHERE a.action = 'return_report') AS report_returns
            FROM grants g JOIN grant_audit a ON a.grant_id = g.id
            WHERE {_REPORTED_GRANTS}
              AND a.action IN ('submit', 'return', 'verify', 'recommend', 'approve',
                               'reject', 'report', 'return_report')
            GROUP BY GROUPING SETS ((), (left(g.region_code, :digits)))
            """  # noqa: S608 (one fixed text: _REPORTED_GRANTS)
        ),
        values,
    ).all()

    def figures(row) -> dict:
        counts = {key: int(getattr(row, key) or 0) if row else 0 for key in DECISION_COUNTS}
        return {
            **counts,
            "approval_pct": percent(counts["approved"], counts["decided"]),
            "rejection_pct": percent(counts["rejected"], counts["decided"]),
            "return_pct": percent(counts["returns"], counts["submissions"]),
            "report_return_pct": percent(counts["report_returns"], counts["reports"]),
        }

    total = next((row for row in rows if row.no_region), None)
    regions = {row.region_key: row for row in rows if not row.no_region}
    return {
        **_echo(report),
        "total": figures(total),
        "regions": _regional(regions, lambda code, row: {"region_code": code, **figures(row)})
        if report.level
        else [],
    }
