"""What each page shows, fetched through kube-client with the signed-in user's own token.

Plain functions of a client and the page's parameters, no Flask: each answers a Page whose
tables are what the template renders and what the downloads write, so a table on screen
and its CSV or XLSX are the same rows."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from typing import Any

from kube_client import KubeClient, ProblemError
from kube_dashboard.tables import Column, Table

REGION_PATTERN = re.compile(r"^(\d{2}|\d{4}|\d{6}|\d{10})$")
LEVELS = ("province", "regency", "district")
# How many rows a list (overdue applications, a group's messages) shows and downloads.
LIST_LIMIT = 500
PERIODS = ("30", "90", "365", "semua")
DEFAULT_PERIOD = "90"
# Stages an application has reached once its money was transferred.
PAID_STAGES = frozenset({"disbursed", "reported", "report_accepted", "monitored", "closed"})


class BadParameter(ValueError):
    """A page parameter is not valid; `field` names it."""

    def __init__(self, field_name: str, message_id: str) -> None:
        super().__init__(f"{field_name}: {message_id}")
        self.field = field_name
        self.message_id = message_id


@dataclass
class Card:
    label: str  # message id
    value: Any
    kind: str  # int, money, pct
    key: str  # stable id for tests and styling


@dataclass
class Chart:
    id: str
    type: str  # bar, line
    labels: list[str]
    datasets: list[dict[str, Any]]
    horizontal: bool = False
    label_prefix: str | None = None  # labels are message ids with this prefix


@dataclass
class Page:
    name: str
    region: str  # "" = the token's whole region (nationwide for a nationwide token)
    level: str | None = None
    cards: list[Card] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    charts: list[Chart] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, table: Table) -> Table:
        self.tables[table.name] = table
        return table


def region_param(value: str | None, field_name: str = "region") -> str:
    """A region code prefix from a query string, or "" for none; BadParameter otherwise."""
    value = (value or "").strip().replace(".", "")
    if value and not REGION_PATTERN.match(value):
        raise BadParameter(field_name, "invalid_region")
    return value


def period_param(value: str | None) -> str:
    value = value or DEFAULT_PERIOD
    if value not in PERIODS:
        raise BadParameter("hari", "invalid_value")
    return value


def period_since(period: str, now: datetime | None = None) -> str | None:
    """The start of a message period: midnight UTC `period` days ago (stable within a day)."""
    if period == "semua":
        return None
    today = (now or datetime.now(UTC)).date()
    start = datetime.combine(today - timedelta(days=int(period)), time(), tzinfo=UTC)
    return start.isoformat()


def child_level(region: str) -> str:
    """The level one below a region (its rows): province -> regency -> district."""
    if len(region) == 2:
        return "regency"
    if len(region) >= 4:
        return "district"
    return "province"


def parent_region(region: str) -> str | None:
    """The region one level up, "" for the top, None when already there."""
    if not region:
        return None
    return {2: "", 4: region[:2], 6: region[:4], 10: region[:6]}.get(len(region), "")


def _drill(row: dict[str, Any]) -> str | None:
    code = row.get("region_code") or ""
    return code if len(code) in (2, 4) else None


def _opt(region: str) -> str | None:
    return region or None


def mask_phone(phone: str | None) -> str | None:
    """A phone number with all but its first 5 and last 3 characters hidden."""
    if not phone or "*" in phone or len(phone) < 9:
        return phone
    return phone[:5] + "*" * (len(phone) - 8) + phone[-3:]


# Calls made at once


def at_once(
    client: KubeClient, calls: Mapping[Hashable, Callable[[KubeClient], Any]]
) -> dict[Hashable, Any]:
    """Each call made at the same time, on a copy of `client` of its own: a page is its API
    calls, and one after another their times add up (the comparison's fourteen reports took
    1.3 s at 100,000 groups, docs/performance.md). The answers by key; a call that raised
    answers its exception, for the caller to raise or to show."""

    def call_with_own_client(call: Callable[[KubeClient], Any]) -> Any:
        with client.copy() as own:
            return call(own)

    with ThreadPoolExecutor(max_workers=max(len(calls), 1)) as pool:
        futures = {key: pool.submit(call_with_own_client, call) for key, call in calls.items()}
    return {key: future.exception() or future.result() for key, future in futures.items()}


def _raise_first(answers: dict[Hashable, Any]) -> dict[Hashable, Any]:
    for answer in answers.values():
        if isinstance(answer, BaseException):
            raise answer
    return answers


# Overview


def overview(client: KubeClient, region: str, period: str) -> Page:
    """Groups, the grant pipeline, budget absorption and message reach, per child region."""
    level = child_level(region)
    since = period_since(period)
    scoped = _opt(region)
    answers = _raise_first(
        at_once(
            client,
            {
                "groups": lambda c: c.registry.report_groups(level=level, region=scoped),
                "pipeline": lambda c: c.grants.report_pipeline(level=level, region=scoped),
                "budgets": lambda c: c.grants.report_budgets(region=scoped),
                "reach": lambda c: c.notifications.report_reach(
                    level=level, region=scoped, since=since
                ),
            },
        )
    )
    groups, pipeline = answers["groups"], answers["pipeline"]
    budgets, reach = answers["budgets"], answers["reach"]
    page = Page("ringkasan", region, level, extra={"since": since, "period": period})

    total = groups["total"]
    by_status = total.get("by_status") or {}
    paid = sum(s["count"] for s in pipeline["stages"] if s["stage"] in PAID_STAGES)
    page.cards = [
        Card("groups", total["groups"], "int", "groups"),
        Card("groups_active", by_status.get("active", 0), "int", "groups-active"),
        Card("members", total["members"], "int", "members"),
        Card("applications_total", pipeline["total"]["count"], "int", "applications"),
        Card("disbursed_count", paid, "int", "applications-paid"),
        Card(
            "region_absorption", budgets["total"].get("region_absorption_pct"), "pct", "absorption"
        ),
        Card("reached_pct", reach["total"].get("reached_pct"), "pct", "reached"),
    ]

    rows: dict[str, dict[str, Any]] = {}

    def row(code: str) -> dict[str, Any]:
        return rows.setdefault(code, {"region_code": code, "region_name": None})

    for item in groups["rows"]:
        target = row(item["region_code"])
        target["region_name"] = item.get("region_name")
        target["groups"] = item["groups"]
        target["members"] = item["members"]
        target["active"] = (item.get("by_status") or {}).get("active", 0)
    for item in pipeline.get("regions", []):
        target = row(item["region_code"])
        target["applications"] = item["total"]["count"]
        target["amount"] = item["total"]["amount"]
        target["paid"] = sum(s["count"] for s in item["stages"] if s["stage"] in PAID_STAGES)
    for item in reach["rows"]:
        target = row(item["region_code"])
        target["members_reached"] = item["members_reached"]
        target["reached_pct"] = item.get("reached_pct")
    ordered = [rows[code] for code in sorted(rows)]
    page.add(
        Table(
            "wilayah",
            "by_region",
            [
                Column("region_code", "region", "region"),
                Column("region_name", "region_name"),
                Column("groups", "groups", "int"),
                Column("active", "groups_active", "int"),
                Column("members", "members", "int"),
                Column("applications", "applications", "int"),
                Column("amount", "applications_amount", "money"),
                Column("paid", "disbursed_count", "int"),
                Column("members_reached", "members_reached", "int"),
                Column("reached_pct", "reached_pct", "pct"),
            ],
            ordered,
        )
    )
    statuses = ("draft", "active", "suspended", "dissolved")
    page.add(
        Table(
            "status",
            "groups_by_status",
            [Column("status", "status", "code:status_"), Column("groups", "groups", "int")],
            [{"status": s, "groups": by_status.get(s, 0)} for s in statuses],
        )
    )
    page.add(_budget_table(budgets))
    page.charts = [
        Chart(
            "chart-groups",
            "bar",
            [r["region_code"] for r in ordered],
            [
                {"label": "groups", "data": [r.get("groups", 0) for r in ordered]},
                {"label": "groups_active", "data": [r.get("active", 0) for r in ordered]},
            ],
        ),
        _funnel(pipeline),
    ]
    return page


# Grant pipeline


def pipeline(client: KubeClient, region: str) -> Page:
    """The funnel by stage, overdue figures per stage and the overdue applications."""
    report = client.grants.report_pipeline(region=_opt(region))
    overdue = client.grants.report_overdue(region=_opt(region))
    listed = list(
        islice(client.grants.iter_grants(overdue=True, region=_opt(region)), LIST_LIMIT + 1)
    )
    page = Page("alur", region, extra={"as_of": overdue.get("as_of")})
    page.cards = [
        Card("applications_total", report["total"]["count"], "int", "applications"),
        Card("applications_amount", report["total"]["amount"], "money", "amount"),
        Card("overdue", overdue["total"]["overdue"], "int", "overdue"),
        Card("overdue_pct", overdue["total"].get("overdue_pct"), "pct", "overdue-pct"),
    ]
    page.add(
        Table(
            "tahap",
            "funnel",
            [
                Column("stage", "stage", "code:stage_"),
                Column("count", "count", "int"),
                Column("amount", "amount", "money"),
            ],
            report["stages"],
        )
    )
    page.add(
        Table(
            "terlambat-per-tahap",
            "overdue_by_stage",
            [
                Column("stage", "stage", "code:stage_"),
                Column("with_deadline", "with_deadline", "int"),
                Column("overdue", "overdue", "int"),
            ],
            overdue["stages"],
        )
    )
    page.add(
        Table(
            "terlambat",
            "overdue_list",
            [
                Column("group_name", "group", "text", link=lambda r: r.get("group_id")),
                Column("region_code", "region", "text"),
                Column("stage", "stage", "code:stage_"),
                Column("due_at", "due_at", "date"),
                Column("amount", "amount", "money"),
            ],
            listed[:LIST_LIMIT],
            note="first_n_only" if len(listed) > LIST_LIMIT else None,
        )
    )
    page.charts = [_funnel(report)]
    return page


def _funnel(report: dict[str, Any]) -> Chart:
    # The pipeline report lists every stage in route order (docs/grants.md, "Reports").
    stages = [s for s in report["stages"] if s["stage"] != "cancelled"]
    return Chart(
        "chart-funnel",
        "bar",
        [s["stage"] for s in stages],
        [{"label": "applications", "data": [s["count"] for s in stages]}],
        horizontal=True,
        label_prefix="stage_",
    )


# Budget absorption


def budgets(client: KubeClient, region: str) -> Page:
    """Per programme: budget, reserved, disbursed, absorption, and the region's part."""
    report = client.grants.report_budgets(region=_opt(region))
    page = Page("anggaran", region)
    total = report["total"]
    page.cards = [
        Card("total_budget", total["total_budget"], "money", "budget"),
        Card("disbursed", total["disbursed"], "money", "disbursed"),
        Card("absorption", total.get("absorption_pct"), "pct", "absorption-all"),
        Card("region_absorption", total.get("region_absorption_pct"), "pct", "absorption"),
    ]
    table = page.add(_budget_table(report))
    page.charts = [
        Chart(
            "chart-budgets",
            "bar",
            [r["name"] for r in table.rows],
            [
                {"label": "absorption", "data": [r.get("absorption_pct") for r in table.rows]},
                {
                    "label": "region_absorption",
                    "data": [r.get("region_absorption_pct") for r in table.rows],
                },
            ],
        )
    ]
    return page


def _budget_table(report: dict[str, Any]) -> Table:
    return Table(
        "program",
        "budgets_by_program",
        [
            Column("name", "program"),
            Column("fiscal_year", "fiscal_year", "text"),
            Column("funding_source", "funding_source", "code:funding_"),
            Column("total_budget", "total_budget", "money"),
            Column("reserved", "reserved", "money"),
            Column("disbursed", "disbursed", "money"),
            Column("available", "available", "money"),
            Column("absorption_pct", "absorption", "pct"),
            Column("region_disbursed", "region_disbursed", "money"),
            Column("region_absorption_pct", "region_absorption", "pct"),
        ],
        list(report.get("programs", [])),
    )


# Message reach


def messages(client: KubeClient, region: str, period: str) -> Page:
    """Messages by status and channel, members reached, and opt-outs, per child region."""
    level = child_level(region)
    since = period_since(period)
    sent = client.notifications.report_messages(level=level, region=_opt(region), since=since)
    reach = client.notifications.report_reach(level=level, region=_opt(region), since=since)
    opt_outs = client.notifications.report_opt_outs(level=level, region=_opt(region))
    page = Page("pesan", region, level, extra={"since": since, "period": period})
    page.cards = [
        Card("messages", sent["total"]["total"], "int", "messages"),
        Card("delivery_pct", sent["total"].get("delivery_pct"), "pct", "delivery"),
        Card("members_messaged", reach["total"]["members_messaged"], "int", "messaged"),
        Card("reached_pct", reach["total"].get("reached_pct"), "pct", "reached"),
        Card("opted_out", opt_outs["total"]["opted_out"], "int", "opted-out"),
    ]
    page.add(
        Table(
            "jangkauan",
            "reach_by_region",
            [
                Column("region_code", "region", "region"),
                Column("members_messaged", "members_messaged", "int"),
                Column("members_reached", "members_reached", "int"),
                Column("members_confirmed", "members_confirmed", "int"),
                Column("reached_pct", "reached_pct", "pct"),
                Column("groups_messaged", "groups_messaged", "int"),
                Column("groups_reached", "groups_reached", "int"),
            ],
            list(reach["rows"]),
        )
    )
    page.add(
        Table(
            "pesan",
            "messages_by_region",
            [
                Column("region_code", "region", "region"),
                Column("channel", "channel", "code:channel_"),
                Column("queued", "msg_queued", "int"),
                Column("sending", "msg_sending", "int"),
                Column("sent", "msg_sent", "int"),
                Column("delivered", "msg_delivered", "int"),
                Column("failed", "msg_failed", "int"),
                Column("total", "total", "int"),
                Column("delivery_pct", "delivery_pct", "pct"),
            ],
            list(sent["rows"]),
        )
    )
    page.add(
        Table(
            "berhenti",
            "opt_outs_by_region",
            [
                Column("region_code", "region", "region"),
                Column("members", "members", "int"),
                Column("members_with_phone", "members_with_phone", "int"),
                Column("opted_out", "opted_out", "int"),
                Column("opted_out_pct", "opted_out_pct", "pct"),
            ],
            list(opt_outs["rows"]),
        )
    )
    rows = reach["rows"]
    page.charts = [
        Chart(
            "chart-reach",
            "bar",
            [r["region_code"] for r in rows],
            [
                {"label": "members_messaged", "data": [r["members_messaged"] for r in rows]},
                {"label": "members_reached", "data": [r["members_reached"] for r in rows]},
            ],
        )
    ]
    return page


# One group


def group(client: KubeClient, group_id: str) -> Page:
    """A group as the registry answers it (members masked by the API), its applications,
    visits, revenue trend and messages."""
    found = client.registry.get_group(group_id)
    members = list(islice(client.registry.list_members(group_id), LIST_LIMIT))
    for member in members:
        # The API masks NIK and No. KK; a page needs no full phone number either.
        member["phone"] = mask_phone(member.get("phone"))
    grants = list(islice(client.grants.iter_grants(group_id=group_id), LIST_LIMIT))
    visits = list(islice(client.registry.iter_visits(group_id), LIST_LIMIT))
    sent = list(islice(client.notifications.iter_messages(group_id=group_id), LIST_LIMIT))
    page = Page("kelompok", found.get("region_code") or "", extra={"group": found})
    page.add(
        Table(
            "anggota",
            "members",
            [
                Column("name", "name"),
                Column("role", "role", "code:role_"),
                Column("nik", "nik_masked"),
                Column("phone", "phone_masked"),
                Column("village_code", "region"),
            ],
            members,
        )
    )
    page.add(
        Table(
            "permohonan",
            "grants_of_group",
            [
                Column("created_at", "created_at", "date"),
                Column("stage", "stage", "code:stage_"),
                Column("amount", "amount", "money"),
                Column("due_at", "due_at", "date"),
                Column("overdue", "overdue", "bool"),
            ],
            grants,
        )
    )
    for visit in visits:
        visit["topics_text"] = ", ".join(visit.get("topics") or [])
    page.add(
        Table(
            "kunjungan",
            "visits",
            [
                Column("visited_on", "visited_on", "date"),
                Column("monthly_revenue", "monthly_revenue", "money"),
                Column("topics_text", "topics"),
            ],
            visits,
        )
    )
    page.add(
        Table(
            "pesan",
            "messages",
            [
                Column("created_at", "created_at", "date"),
                Column("channel", "channel", "code:channel_"),
                Column("event_type", "event_type"),
                Column("recipient", "recipient"),
                Column("status", "status", "code:msg_"),
            ],
            sent,
        )
    )
    trend = found.get("revenue_trend") or [
        {"visited_on": v["visited_on"], "monthly_revenue": v["monthly_revenue"]}
        for v in reversed(visits)
        if v.get("monthly_revenue") is not None
    ]
    page.charts = [
        Chart(
            "chart-revenue",
            "line",
            [p["visited_on"] for p in trend],
            [{"label": "monthly_revenue", "data": [p["monthly_revenue"] for p in trend]}],
        )
    ]
    return page


# Two regions side by side

MEASURES: tuple[tuple[str, str], ...] = (
    ("groups", "int"),
    ("groups_active", "int"),
    ("members", "int"),
    ("applications_total", "int"),
    ("applications_amount", "money"),
    ("disbursed_count", "int"),
    ("overdue_pct", "pct"),
    ("region_disbursed", "money"),
    ("region_absorption", "pct"),
    ("groups_visited_pct", "pct"),
    ("median_revenue_before", "money"),
    ("median_revenue_after", "money"),
    ("reached_pct", "pct"),
)


def _measure_calls(region: str, since: str | None) -> dict[str, Callable[[KubeClient], Any]]:
    """The reports the comparison reads of one region, each from its own service."""
    return {
        "groups": lambda c: c.registry.report_groups(region=region)["total"],
        "visits": lambda c: c.registry.report_visits(region=region)["total"],
        "revenue": lambda c: c.registry.report_revenue(region=region)["total"],
        "flow": lambda c: c.grants.report_pipeline(region=region),
        "overdue": lambda c: c.grants.report_overdue(region=region)["total"],
        "money": lambda c: c.grants.report_budgets(region=region)["total"],
        "reach": lambda c: c.notifications.report_reach(region=region, since=since)["total"],
    }


def _measures(answers: dict[str, Any]) -> dict[str, Any]:
    """The comparison's measures of one region, from its reports."""
    groups, flow = answers["groups"], answers["flow"]
    overdue, money = answers["overdue"], answers["money"]
    visits, revenue, reach = answers["visits"], answers["revenue"], answers["reach"]
    return {
        "groups": groups["groups"],
        "groups_active": (groups.get("by_status") or {}).get("active", 0),
        "members": groups["members"],
        "applications_total": flow["total"]["count"],
        "applications_amount": flow["total"]["amount"],
        "disbursed_count": sum(s["count"] for s in flow["stages"] if s["stage"] in PAID_STAGES),
        "overdue_pct": overdue.get("overdue_pct"),
        "region_disbursed": money.get("region_disbursed"),
        "region_absorption": money.get("region_absorption_pct"),
        "groups_visited_pct": visits.get("groups_visited_pct"),
        "median_revenue_before": revenue.get("median_revenue_before"),
        "median_revenue_after": revenue.get("median_revenue_after"),
        "reached_pct": reach.get("reached_pct"),
    }


def compare(client: KubeClient, a: str, b: str, period: str) -> Page:
    """The same measures for two regions; a side the token may not see says so politely."""
    since = period_since(period)
    page = Page("bandingkan", "", extra={"a": a, "b": b, "since": since, "period": period})
    sides: dict[str, dict[str, Any] | None] = {}
    refusals: dict[str, ProblemError] = {}
    # Both sides' reports at once.
    calls = {
        (key, name): call
        for key, code in (("a", a), ("b", b))
        for name, call in _measure_calls(code, since).items()
    }
    answers = at_once(client, calls)
    for key in ("a", "b"):
        side = {name: answers[(key, name)] for (of, name) in calls if of == key}
        errors = [answer for answer in side.values() if isinstance(answer, BaseException)]
        refused = next((e for e in errors if isinstance(e, ProblemError)), None)
        if refused is not None and refused.status == 401:
            raise refused  # the token itself is no longer good: back to sign-in
        if refused is None and errors:
            raise errors[0]
        if refused is not None:
            sides[key], refusals[key] = None, refused
        else:
            sides[key] = _measures(side)
    page.extra["refusals"] = refusals
    rows = []
    for measure, kind in MEASURES:
        rows.append(
            {
                "measure": measure,
                "a": None if sides["a"] is None else sides["a"][measure],
                "b": None if sides["b"] is None else sides["b"][measure],
                "_kind": kind,
            }
        )
    page.add(
        Table(
            "perbandingan",
            "comparison",
            [
                Column("measure", "measure", "code:"),
                # Headed by the codes themselves (a label the catalogue lacks shows as is).
                Column("a", a, "row"),
                Column("b", b, "row"),
            ],
            rows,
        )
    )
    return page
