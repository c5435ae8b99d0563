"""The notification service's report figures for the province dashboard: messages by status,
channel and region, the members they reached, and opt-outs among members. Each is one
aggregating statement (GROUP BY GROUPING SETS: a row per region and a total), never rows
counted in Python. Percentages are numbers 0-100 with one decimal, null where nothing is
there to divide by (docs/notifications.md, "Reports")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Connection,
    Numeric,
    and_,
    cast,
    exists,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from services.notifications.models import Contact, Message, OptOut, RecipientGroup
from shared.errors import InvalidInput
from shared.scope import RegionScope

# Digits of the Kemendagri code at each level.
LEVELS = {"province": 2, "regency": 4, "district": 6}
STATUSES = ("queued", "sending", "sent", "delivered", "failed")
# A provider took the message and no failure was reported: what a member can have read.
ACCEPTED = ("sent", "delivered")
# A message to a member carries the member's id (a UUID); an office mailbox's carries its
# address, or `mailbox:<role>` when no mailbox was found. A UUID's shape (36 characters,
# dashes where a UUID has them) and no `@` tell them apart: as a regular expression the same
# test took half of a nationwide reach report (3 µs a message).
_MEMBER_KEY = and_(
    Message.recipient_key.like("________-____-____-____-____________"),
    Message.recipient_key.not_like("%@%"),
)


def report_area(scope: RegionScope, region: str | None, level: str) -> tuple[str, int]:
    """The region prefix an answer covers (the `region` asked for, else the caller's) and the
    length of the codes its rows are grouped by; 422 naming `region` outside the caller's."""
    if region is not None:
        if not scope.covers(region):
            raise InvalidInput.field("region", f"The region {region} lies outside your region.")
        prefix = region
    else:
        prefix = scope.prefix
    # A level coarser than the area would label a part with its parent's code: one row then.
    return prefix, max(LEVELS[level], len(prefix))


def _percent(part: ColumnElement, whole: ColumnElement) -> ColumnElement:
    """100 * part / whole with one decimal, null when the whole is 0."""
    return func.round(cast(part, Numeric) * 100 / func.nullif(whole, 0), 1)


def _count(condition: ColumnElement) -> ColumnElement:
    return func.count().filter(condition)


def _rows_and_total(
    connection: Connection, statement, keys: tuple[str, ...]
) -> tuple[list[dict], dict]:
    """Split the rows of a GROUPING SETS statement (its last column `is_total`) into the
    per-region rows and the total row (zeros when nothing matched: a total row always comes)."""
    rows, total = [], None
    for row in connection.execute(statement).mappings():
        values = {k: v for k, v in row.items() if k != "is_total"}
        if row["is_total"]:
            total = {k: v for k, v in values.items() if k not in keys}
        else:
            rows.append(values)
    return rows, total or {}


def message_report(connection: Connection, scope: RegionScope, args: Mapping[str, Any]) -> dict:
    """Messages made in the period per region (at `level`) and channel: counts by status, the
    delivery and confirmed-delivery percentages, and a total row."""
    prefix, digits = report_area(scope, args.get("region"), args["level"])
    region = func.left(Message.region_code, digits)
    status = Message.status
    accepted = _count(status.in_(ACCEPTED))
    finished = _count(status.in_((*ACCEPTED, "failed")))
    conditions = [RegionScope(prefix).where(Message.region_code), *_period(args)]
    if args.get("channel"):
        conditions.append(Message.channel == args["channel"])
    statement = (
        select(
            region.label("region_code"),
            Message.channel.label("channel"),
            *(_count(status == name).label(name) for name in STATUSES),
            func.count().label("total"),
            _percent(accepted, finished).label("delivery_pct"),
            _percent(_count(status == "delivered"), finished).label("confirmed_pct"),
            func.grouping(region, Message.channel).label("is_total"),
        )
        .where(*conditions)
        .group_by(func.grouping_sets(tuple_(region, Message.channel), tuple_()))
        .order_by(region, Message.channel)
    )
    rows, total = _rows_and_total(connection, statement, ("region_code", "channel"))
    zero = {**dict.fromkeys((*STATUSES, "total"), 0), "delivery_pct": None, "confirmed_pct": None}
    answer = {**_echo(args, prefix), "channel": args.get("channel")}
    return {**answer, "rows": rows, "total": total or zero}


def reach_report(connection: Connection, scope: RegionScope, args: Mapping[str, Any]) -> dict:
    """Members (and groups) messaged in the period per region at `level`, and how many of them
    at least one message reached (accepted by a provider) or was confirmed delivered."""
    prefix, digits = report_area(scope, args.get("region"), args["level"])
    status = Message.status
    # First each member once per region and group (a hash aggregate), then count those: far
    # cheaper than COUNT(DISTINCT ...) over every message.
    per_member = (
        select(
            func.left(Message.region_code, digits).label("region_code"),
            Message.group_id,
            func.bool_or(status.in_(ACCEPTED)).label("reached"),
            func.bool_or(status == "delivered").label("confirmed"),
        )
        .where(RegionScope(prefix).where(Message.region_code), _MEMBER_KEY, *_period(args))
        .group_by(literal_column("1"), Message.recipient_key, Message.group_id)
        .subquery("per_member")
    )
    region, group = per_member.c.region_code, per_member.c.group_id
    reached = func.count().filter(per_member.c.reached)
    statement = (
        select(
            region.label("region_code"),
            func.count().label("members_messaged"),
            reached.label("members_reached"),
            func.count().filter(per_member.c.confirmed).label("members_confirmed"),
            _percent(reached, func.count()).label("reached_pct"),
            func.count(group.distinct()).label("groups_messaged"),
            func.count(group.distinct()).filter(per_member.c.reached).label("groups_reached"),
            func.grouping(region).label("is_total"),
        )
        .group_by(func.grouping_sets(tuple_(region), tuple_()))
        .order_by(region)
    )
    rows, total = _rows_and_total(connection, statement, ("region_code",))
    zero = {
        **dict.fromkeys(
            (
                "members_messaged",
                "members_reached",
                "members_confirmed",
                "groups_messaged",
                "groups_reached",
            ),
            0,
        ),
        "reached_pct": None,
    }
    return {**_echo(args, prefix), "rows": rows, "total": total or zero}


def opt_out_report(connection: Connection, scope: RegionScope, args: Mapping[str, Any]) -> dict:
    """Members of the region's groups (dissolved ones left out) whose phone number is on the
    opt-out list, per region at `level`: counts and share of the members with a phone. Numbers
    no member has are counted only for an answer covering the whole country."""
    prefix, digits = report_area(scope, args.get("region"), args["level"])
    region = func.left(RecipientGroup.region_code, digits)
    with_phone = func.count(Contact.phone)
    opted_out = func.count(OptOut.phone)
    statement = (
        select(
            region.label("region_code"),
            func.count().label("members"),
            with_phone.label("members_with_phone"),
            opted_out.label("opted_out"),
            _percent(opted_out, with_phone).label("opted_out_pct"),
            func.grouping(region).label("is_total"),
        )
        .select_from(Contact)
        .join(RecipientGroup, RecipientGroup.id == Contact.group_id)
        .outerjoin(OptOut, OptOut.phone == Contact.phone)
        .where(
            RegionScope(prefix).where(RecipientGroup.region_code),
            RecipientGroup.status != "dissolved",
        )
        .group_by(func.grouping_sets(tuple_(region), tuple_()))
        .order_by(region)
    )
    rows, total = _rows_and_total(connection, statement, ("region_code",))
    total = total or {"members": 0, "members_with_phone": 0, "opted_out": 0, "opted_out_pct": None}
    unattributed = None
    if prefix == "":
        # Only a nationwide answer may count numbers that are no member's: they have no region.
        unattributed = connection.scalar(
            select(func.count())
            .select_from(OptOut)
            .where(~exists().where(Contact.phone == OptOut.phone))
        )
    return {**_echo(args, prefix), "rows": rows, "total": {**total, "unattributed": unattributed}}


def _period(args: Mapping[str, Any]) -> list[ColumnElement]:
    """`since` (inclusive) and `until` (exclusive) on when the message was made."""
    conditions = []
    if args.get("since"):
        conditions.append(Message.created_at >= args["since"])
    if args.get("until"):
        conditions.append(Message.created_at < args["until"])
    return conditions


def _echo(args: Mapping[str, Any], prefix: str) -> dict:
    """What an answer covers, so two answers side by side say which is which."""
    return {
        "level": args["level"],
        "region": prefix,
        "since": args.get("since"),
        "until": args.get("until"),
    }
