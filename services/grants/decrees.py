"""Decrees (SK penetapan): one decree approves many verified or recommended applications.
Each application that passes its guards is approved and its amount reserved; each that fails
is reported with its reasons. With `atomic`, any failure refuses the whole decree."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.grants import audit
from services.grants.applications import Actor, take_action
from services.grants.calendar import WorkingCalendar
from services.grants.models import Decree, Grant, GroupProjection, Program
from shared.db import utcnow
from shared.errors import Conflict, DomainError, NotFound
from shared.events.outbox import Outbox


class ItemsFailed(Conflict):
    """Some items of an atomic bulk request failed, so none was done; `outcomes` says which."""

    def __init__(self, detail: str, outcomes: list[dict]):
        super().__init__(detail)
        self.outcomes = outcomes


def issue_decree(
    session: Session, outbox: Outbox, data: dict, *, actor: Actor, now: datetime | None = None
) -> tuple[Decree, list[dict]]:
    """Approve the listed applications under one decree; return it and an outcome per item."""
    now = now or utcnow()
    office = actor.scope.prefix
    if session.scalar(
        select(Decree.id).where(Decree.region_code == office, Decree.number == data["number"])
    ):
        raise Conflict(
            f"Your office already issued a decree numbered {data['number']}.",
            errors=[{"field": "number", "message": "already used by your office"}],
        )
    ids = list(dict.fromkeys(data["grant_ids"]))
    # Rows locked in one order (by id), then programmes in one order: no two decrees, nor a
    # decree and a single approval, can wait on each other in a cycle.
    grants = {
        g.id: g
        for g in session.scalars(
            select(Grant)
            .where(Grant.id.in_(ids), actor.scope.where(Grant.region_code))
            .order_by(Grant.id)
            .with_for_update()
        )
    }
    programs = {
        p.id: p
        for p in session.scalars(
            select(Program)
            .where(Program.id.in_({g.program_id for g in grants.values()}))
            .order_by(Program.id)
            .with_for_update()
        )
    }
    # Groups and audit chain heads read once for all, so no approval queries (nor flushes)
    # before its guards: every change is flushed together, and the programme row once.
    groups = {
        g.id: g
        for g in session.scalars(
            select(GroupProjection).where(
                GroupProjection.id.in_({g.group_id for g in grants.values()})
            )
        )
    }
    heads = audit.chain_heads(session, list(grants))
    decree = Decree(
        id=uuid.uuid4(),
        number=data["number"],
        decree_date=data["decree_date"],
        signer=data["signer"],
        region_code=office,
        created_by=actor.sub,
        created_at=now,
    )
    session.add(decree)
    session.flush()
    calendar = WorkingCalendar.load(session)
    outcomes: list[dict] = []
    approved: list[uuid.UUID] = []
    failed: list[dict] = []
    for grant_id in ids:
        grant = grants.get(grant_id)
        try:
            if grant is None:
                raise NotFound("No grant application with this id in your region.")
            take_action(
                session,
                outbox,
                grant,
                "approve",
                actor=actor,
                data={"decree_number": data["number"], "decree_date": data["decree_date"]},
                program=programs[grant.program_id],
                group=groups.get(grant.group_id),
                audit_head=heads.get(grant_id),
                calendar=calendar,
                now=now,
                extra_event={"decree_id": decree.id},
            )
        except DomainError as exc:
            # A refused approval changed nothing: guards run before any state moves.
            outcomes.append({"grant_id": grant_id, "ok": False, "error": exc})
            guards = [e["guard"] for e in exc.errors or [] if "guard" in e]
            failed.append({"grant_id": grant_id, "guards": guards or [type(exc).__name__]})
            continue
        grant.decree_id = decree.id
        approved.append(grant_id)
        outcomes.append({"grant_id": grant_id, "ok": True, "stage": grant.stage})
    # A decree approving nothing is not issued: its number stays free for the corrected one.
    if failed and (data.get("atomic") or not approved):
        raise ItemsFailed(
            f"{len(failed)} of {len(ids)} applications cannot be approved; "
            + ("with atomic, nothing was approved." if approved else "the decree is not issued."),
            [o for o in outcomes if not o["ok"]],
        )
    decree.approved_count, decree.failed_count = len(approved), len(failed)
    outbox.add(
        session,
        "decree.issued",
        {
            "decree_id": decree.id,
            "number": decree.number,
            "decree_date": decree.decree_date,
            "signer": decree.signer,
            "region_code": decree.region_code,
            "approved": approved,
            "failed": failed,
        },
    )
    return decree, outcomes


def find_decree(session: Session, decree_id: uuid.UUID, actor: Actor) -> Decree:
    decree = session.get(Decree, decree_id)
    # An office sees its own decrees and those of the offices inside its region.
    if decree is None or not actor.scope.covers(decree.region_code):
        raise NotFound("No decree with this id in your region.")
    return decree
