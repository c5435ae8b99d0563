"""Mentoring visits by pendamping, and what they tell about a group's business."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.registry.models import Group, Visit
from shared.errors import Conflict

TREND_POINTS = 6
REVENUE_DIRECTIONS = ("rising", "falling", "steady")


def record_visit(session: Session, group: Group, data: dict, *, pendamping: str) -> Visit:
    """Record a mentoring visit to a group."""
    if group.status == "dissolved":
        raise Conflict("A dissolved group is no longer mentored.")
    visit = Visit(id=uuid.uuid4(), group_id=group.id, pendamping=pendamping, **data)
    visit.topics = sorted(set(visit.topics))
    session.add(visit)
    session.flush()
    return visit


def visits_of(group_id: uuid.UUID):
    return (
        select(Visit)
        .where(Visit.group_id == group_id)
        .order_by(Visit.visited_on.desc(), Visit.created_at.desc())
    )


def summarise_visits(recent: list[dict]) -> dict:
    """The mentoring summary of a group's latest visits (newest first, each with visited_on,
    topics and monthly_revenue)."""
    points = [
        {"visited_on": v["visited_on"], "monthly_revenue": v["monthly_revenue"]}
        for v in recent
        if v["monthly_revenue"] is not None
    ][:TREND_POINTS][::-1]
    direction = None
    if len(points) >= 2:
        first, last = points[0]["monthly_revenue"], points[-1]["monthly_revenue"]
        direction = "rising" if last > first else "falling" if last < first else "steady"
    return {
        "last_visit": recent[0] if recent else None,
        "revenue_trend": points,
        "revenue_direction": direction,
    }
