"""Grant applications: creating one, correcting a draft, and moving it through its route, each
step recorded in the audit trail and announced as an event in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.grants import audit, definitions
from services.grants.budget import lock_program
from services.grants.calendar import WorkingCalendar, end_of_day, local_date
from services.grants.guards import BUDGET_EFFECTS, Step, amount_limit, one_open_application
from services.grants.inputs import action_data
from services.grants.models import FINAL_STAGES, AuditRecord, Grant, GroupProjection, Program
from services.grants.programs import visible_programs
from shared.db import utcnow
from shared.errors import Conflict, InvalidInput, NotFound, NotPermitted
from shared.events.outbox import Outbox
from shared.logs import correlation_id_var
from shared.scope import RegionScope
from shared.workflow import GuardFailure, GuardsFailed, guard_failures


@dataclass(frozen=True)
class Actor:
    """Who takes a step: the token's subject, roles and region."""

    sub: str
    roles: frozenset[str]
    scope: RegionScope

    def role_for(self, allowed: frozenset[str]) -> str:
        """The caller's role the step is recorded under."""
        return sorted(self.roles & allowed)[0]


def grant_snapshot(grant: Grant) -> dict:
    """What other services learn of an application (grant.* events)."""
    return {
        "grant_id": grant.id,
        "version": grant.version,
        "program_id": grant.program_id,
        "group_id": grant.group_id,
        "group_name": grant.group_name,
        "region_code": grant.region_code,
        "stage": grant.stage,
        "amount": grant.amount,
        "workflow_key": grant.workflow_key,
        "workflow_version": grant.workflow_version,
        "due_at": grant.due_at,
    }


def scoped_grants(scope: RegionScope) -> Select:
    return select(Grant).where(scope.where(Grant.region_code))


def find_grant(
    session: Session, grant_id: uuid.UUID, scope: RegionScope, *, lock: bool = False
) -> Grant:
    """The application, if it lies in the caller's region (NotFound otherwise)."""
    statement = select(Grant).where(Grant.id == grant_id)
    if lock:
        statement = statement.with_for_update()
    return scope.one(session, statement, Grant.region_code, what="grant application")


def list_grants(scope: RegionScope, filters: dict, now: datetime) -> Select:
    statement = scoped_grants(scope).order_by(Grant.created_at.desc(), Grant.id)
    if filters.get("stage"):
        statement = statement.where(Grant.stage == filters["stage"])
    if filters.get("program_id"):
        statement = statement.where(Grant.program_id == filters["program_id"])
    if filters.get("group_id"):
        statement = statement.where(Grant.group_id == filters["group_id"])
    if filters.get("region"):
        statement = statement.where(
            Grant.region_code.startswith(filters["region"], autoescape=True)
        )
    if filters.get("overdue") is True:
        statement = statement.where(Grant.due_at < now)
    elif filters.get("overdue") is False:
        statement = statement.where((Grant.due_at.is_(None)) | (Grant.due_at >= now))
    return statement


def visible_program(session: Session, program_id: uuid.UUID, scope: RegionScope) -> Program:
    """A programme the caller's region takes part in."""
    found = session.scalar(visible_programs(scope).where(Program.id == program_id))
    if found is None:
        raise NotFound("No programme with this id in your region.")
    return found


def _group(session: Session, group_id: uuid.UUID) -> GroupProjection | None:
    return session.get(GroupProjection, group_id)


def _refuse(failures: list[dict], what: str) -> None:
    if failures:
        raise GuardsFailed(what, errors=failures)


def _as_errors(failures, guard: str) -> list[dict]:
    return [
        {"guard": guard, "field": f.field, "message": f.message, "message_id": f.message_id}
        for f in failures
    ]


def create_grant(
    session: Session, outbox: Outbox, data: dict, *, actor: Actor, now: datetime | None = None
) -> Grant:
    """A new application in its route's first stage: the first entry of its history."""
    now = now or utcnow()
    program = visible_program(session, data["program_id"], actor.scope)
    route = definitions.latest(session, program.workflow_key)
    if not actor.roles & route.create_roles:
        raise NotPermitted(f"Applications are made by: {', '.join(sorted(route.create_roles))}.")
    group = _group(session, data["group_id"])
    # Another region's group is as unknown as a missing one.
    if group is not None and not actor.scope.covers(group.region_code):
        group = None
    _check_documents(data.get("documents") or {}, route.documents)
    grant = Grant(
        id=uuid.uuid4(),
        program_id=program.id,
        group_id=data["group_id"],
        group_name=group.name if group else "",
        region_code=group.region_code if group else "",
        # None only for an unknown group, which the group_known guard refuses below.
        amount=data.get("amount") or amount_limit(program, group),
        business_plan=data["business_plan"],
        requested_items=data.get("requested_items") or [],
        documents=data.get("documents") or {},
        stage=route.initial,
        workflow_key=route.key,
        workflow_version=route.version,
        version=1,
        stage_entered_at=now,
        created_by=actor.sub,
        created_at=now,
    )
    step = Step(session, program, group, actor.sub, actor.roles, actor.scope, now)
    _refuse(guard_failures(route.create_guards, grant, step), "The application cannot be made.")
    try:
        # Added inside the savepoint, so a refused insert leaves nothing pending behind.
        with session.begin_nested():
            session.add(grant)
            session.flush()
    except IntegrityError:
        # Another request made one between the guard and this insert.
        failures = one_open_application(grant, step) or [
            GuardFailure(
                "The group already has an open application in this programme.",
                "Kelompok ini sudah memiliki pengajuan yang masih berjalan pada program ini.",
                "group_id",
            )
        ]
        raise GuardsFailed(
            "The application cannot be made.", errors=_as_errors(failures, "one_open_application")
        ) from None
    audit.record_step(
        session,
        grant,
        actor=actor.sub,
        role=actor.role_for(route.create_roles),
        action="create",
        from_stage=None,
        comment=None,
        data={"amount": grant.amount},
        at=now,
        request_id=correlation_id_var.get(),
    )
    outbox.add(
        session,
        "grant.created",
        {"grant": grant_snapshot(grant), "actor_role": actor.role_for(route.create_roles)},
    )
    return grant


def _check_documents(documents: dict, known: tuple[str, ...]) -> None:
    unknown = sorted(set(documents) - set(known))
    if unknown:
        raise InvalidInput(
            "The checklist names documents this route does not know.",
            errors=[
                {
                    "field": f"documents.{d}",
                    "message": f"Not a document of this route: {', '.join(known)}.",
                }
                for d in unknown
            ],
        )


def update_draft(session: Session, grant: Grant, changes: dict, *, actor: Actor) -> Grant:
    """Correct a draft's details (a new one, or one returned for correction)."""
    route = definitions.route(session, grant.workflow_key, grant.workflow_version)
    if not actor.roles & route.create_roles:
        raise NotPermitted(f"Drafts are changed by: {', '.join(sorted(route.create_roles))}.")
    if grant.stage != route.initial:
        raise Conflict(
            f"Only a {route.initial} can be changed; this application is {grant.stage}.",
            status_now=grant.stage,
        )
    if "documents" in changes:
        _check_documents(changes["documents"], route.documents)
    for key, value in changes.items():
        setattr(grant, key, value)
    grant.version += 1
    return grant


def take_action(
    session: Session,
    outbox: Outbox,
    grant: Grant,
    action: str,
    *,
    actor: Actor,
    comment: str | None = None,
    data: dict | None = None,
    calendar: WorkingCalendar | None = None,
    now: datetime | None = None,
    program: Program | None = None,
    group: GroupProjection | None = None,
    audit_head: Row | None = None,
    extra_event: dict | None = None,
) -> Grant:
    """Move an application by `action`: role and stage (403/409), then the action's data (422),
    then every guard (409); then the stage moves, the budget with it, the step is recorded and
    announced. The caller holds the grant's row lock. A caller acting on many applications
    passes what it loaded for all of them at once (programme, group, audit chain head); what
    it does not pass is read here."""
    now = now or utcnow()
    route = definitions.route(session, grant.workflow_key, grant.workflow_version)
    transition = route.workflow.check(grant, action, actor.roles)
    loaded = action_data(
        action,
        data,
        comment=comment,
        comment_required=(transition.source, action) in route.comment_required,
    )
    if program is None:
        if any(e.__name__ in BUDGET_EFFECTS for e in transition.effects):
            program = lock_program(session, grant.program_id)
        else:
            program = session.get(Program, grant.program_id)
    step = Step(
        session,
        program,
        group or _group(session, grant.group_id),
        actor.sub,
        actor.roles,
        actor.scope,
        now,
        data=loaded,
        documents=route.documents,
    )
    source = grant.stage
    route.workflow.apply(grant, action, actor.roles, step)
    _record_outcome(grant, action, actor, loaded, comment)
    grant.version += 1
    grant.stage_entered_at = now
    grant.due_at = _due_at(route, grant, program, calendar, session, now)
    role = actor.role_for(transition.roles)
    audit.record_step(
        session,
        grant,
        actor=actor.sub,
        role=role,
        action=action,
        from_stage=source,
        comment=comment,
        data=loaded,
        at=now,
        request_id=correlation_id_var.get(),
        head=audit_head,
    )
    snapshot = grant_snapshot(grant)
    outbox.add(
        session,
        "grant.stage_changed",
        {
            "grant": snapshot,
            "from": source,
            "to": grant.stage,
            "action": action,
            "actor_role": role,
            "comment": comment,
            **(extra_event or {}),
        },
    )
    if action == "disburse":
        outbox.add(
            session,
            "grant.disbursed",
            {
                "grant": snapshot,
                "amount": loaded["amount"],
                "transfer_reference": loaded["transfer_reference"],
                "transfer_date": loaded["transfer_date"],
                "report_due_at": grant.due_at,
            },
        )
    return grant


def _record_outcome(grant: Grant, action: str, actor: Actor, data: dict, comment) -> None:
    """Keep on the application what later steps and readers need of this one."""
    if action == "submit":
        grant.submitted_by = actor.sub
    elif action == "verify":
        grant.verified_by = actor.sub
    elif action == "approve":
        grant.approved_by = actor.sub
        grant.decree_number = data["decree_number"]
    elif action == "disburse":
        grant.transfer_reference = data["transfer_reference"]
        grant.transfer_date = data["transfer_date"]
        grant.disbursed_amount = data["amount"]
    grant.last_comment = comment


def _due_at(route, grant: Grant, program: Program, calendar, session: Session, now: datetime):
    deadline = route.deadlines.get(grant.stage)
    if deadline is None or grant.stage in FINAL_STAGES:
        return None
    if deadline.report_due:
        start = grant.transfer_date or local_date(now, grant.region_code)
        return end_of_day(start + timedelta(days=program.report_due_days), grant.region_code)
    # The leave days are read only for a stage that counts working days.
    calendar = calendar or WorkingCalendar.load(session)
    return calendar.due_at(now, deadline.working_days, grant.region_code)


def overdue(grant: Grant, now: datetime) -> bool:
    return grant.due_at is not None and grant.due_at < now


def history_of(grant_id: uuid.UUID) -> Select:

    return select(AuditRecord).where(AuditRecord.grant_id == grant_id).order_by(AuditRecord.seq)
