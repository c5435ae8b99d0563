"""Deadlines: a stage's due time passing with no step taken is announced once as
grant.deadline_passed, and a usage report's approach once as grant.report_due. The key of
`missed_deadlines` makes a second announcement impossible, however many schedulers run."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.grants import definitions
from services.grants.applications import grant_snapshot
from services.grants.models import FINAL_STAGES, Grant, MissedDeadline
from shared.config import env_int
from shared.events.outbox import Outbox

# Announced at most this many at a time, so one run's transaction stays short.
BATCH = 1000


def report_reminder_days() -> int:
    """Days before a usage report is due that the group is reminded
    (KUBE_REPORT_REMINDER_DAYS)."""
    return env_int("KUBE_REPORT_REMINDER_DAYS", 7)


def _announce(session: Session, outbox: Outbox, kind: str, event_type: str, condition) -> int:
    claimed = (
        session.execute(
            insert(MissedDeadline)
            .from_select(
                ["grant_id", "stage", "due_at", "kind"],
                select(Grant.id, Grant.stage, Grant.due_at, literal(kind))
                .where(condition, Grant.stage.not_in(FINAL_STAGES))
                .order_by(Grant.due_at)
                .limit(BATCH),
            )
            .on_conflict_do_nothing()
            .returning(MissedDeadline.grant_id)
        )
        .scalars()
        .all()
    )
    if not claimed:
        return 0
    for grant in session.scalars(select(Grant).where(Grant.id.in_(claimed))):
        route = definitions.route(session, grant.workflow_key, grant.workflow_version)
        deadline = route.deadlines.get(grant.stage)
        outbox.add(
            session,
            event_type,
            {
                "grant": grant_snapshot(grant),
                "stage": grant.stage,
                "due_at": grant.due_at,
                "responsible_role": deadline.responsible_role if deadline else "admin",
            },
        )
    return len(claimed)


def _not_yet(kind: str):
    """No announcement of this kind for the grant's current stage and due time."""
    return ~(
        select(MissedDeadline.grant_id)
        .where(
            MissedDeadline.grant_id == Grant.id,
            MissedDeadline.stage == Grant.stage,
            MissedDeadline.due_at == Grant.due_at,
            MissedDeadline.kind == kind,
        )
        .exists()
    )


def announce_deadlines(session: Session, outbox: Outbox, now: datetime) -> dict[str, int]:
    """Announce every deadline passed by `now`, and every usage report due within the reminder
    period, that was not announced before; return how many of each."""
    passed = _announce(
        session,
        outbox,
        "passed",
        "grant.deadline_passed",
        and_(Grant.due_at < now, _not_yet("passed")),
    )
    window = timedelta(days=report_reminder_days())
    reminded = _announce(
        session,
        outbox,
        "reminder",
        "grant.report_due",
        and_(
            Grant.stage == "disbursed",
            Grant.due_at >= now,
            Grant.due_at < now + window,
            _not_yet("reminder"),
        ),
    )
    return {"deadline_passed": passed, "report_due": reminded}
