"""Groups: registering, editing, the status workflow, and describing them to other services."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from services.registry.identity import mask_nik
from services.registry.models import Group, Member
from services.registry.regions import check_village
from shared.db import utcnow
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events.outbox import Outbox

OFFICER_ROLES = ("ketua", "sekretaris", "bendahara")


@dataclass(frozen=True)
class Rules:
    """Programme settings that vary between offices."""

    min_members: int = 5
    max_members: int = 20

    @classmethod
    def from_settings(cls, settings) -> Rules:
        """The rules configured by KUBE_GROUP_MIN_MEMBERS and KUBE_GROUP_MAX_MEMBERS."""
        return cls(settings.group_min_members, settings.group_max_members)


def group_snapshot(group: Group, members: list[Member]) -> dict:
    """The state other services keep of a group (the `group` of group.* and member.* events)."""
    return {
        "group_id": group.id,
        "version": group.version,
        "name": group.name,
        "region_code": group.region_code,
        "status": group.status,
        "business_type": group.business_type,
        "member_count": len(members),
        "members": [member_snapshot(m) for m in members],
    }


def member_snapshot(member: Member) -> dict:
    """What other services may know of a member: contacts, never the full NIK."""
    return {
        "member_id": member.id,
        "name": member.name,
        "role": member.role,
        "nik_masked": mask_nik(member.nik),
        "phone": member.phone,
        "email": member.email,
        "language": member.language,
    }


def current_members(session: Session, group_id: uuid.UUID) -> list[Member]:
    return list(
        session.scalars(
            select(Member)
            .where(Member.group_id == group_id, Member.removed_at.is_(None))
            .order_by(Member.created_at, Member.id)
        )
    )


def announce(session: Session, outbox: Outbox, event_type: str, group: Group, **extra) -> None:
    """Bump the group's version and record the event carrying its new state."""
    group.version += 1
    session.flush()
    members = current_members(session, group.id)
    outbox.add(session, event_type, {"group": group_snapshot(group, members), **extra})


def scoped_groups(region_scope: str) -> Select:
    """Groups the caller's region scope covers."""
    statement = select(Group)
    if region_scope:
        statement = statement.where(Group.region_code.startswith(region_scope))
    return statement


def find_group(
    session: Session, group_id: uuid.UUID, region_scope: str, *, lock: bool = False
) -> Group:
    """The group, if it lies in the caller's region; otherwise a 404, so existence never leaks."""
    statement = scoped_groups(region_scope).where(Group.id == group_id)
    if lock:
        # Changes to one group (and its members) are serialised on the group row.
        statement = statement.with_for_update()
    group = session.scalar(statement)
    if group is None:
        raise NotFound("No group with this id in your region.")
    return group


def list_groups(region_scope: str, filters: dict) -> Select:
    statement = scoped_groups(region_scope).order_by(Group.created_at.desc(), Group.id)
    if filters.get("region"):
        statement = statement.where(Group.region_code.startswith(filters["region"]))
    if filters.get("status"):
        statement = statement.where(Group.status == filters["status"])
    if filters.get("business_type"):
        statement = statement.where(
            func.lower(Group.business_type) == filters["business_type"].lower()
        )
    if filters.get("q"):
        text = filters["q"].replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        statement = statement.where(Group.name.ilike(f"%{text}%", escape="\\"))
    return statement


def _check_region(session: Session, region_code: str, region_scope: str) -> None:
    if region_scope and not region_code.startswith(region_scope):
        raise Unprocessable.field("region_code", "The village lies outside your region.")
    problem = check_village(session, region_code)
    if problem:
        raise Unprocessable.field("region_code", problem)


def _apply_fields(group: Group, data: dict) -> None:
    bank = data.pop("bank_account", Ellipsis)
    for key, value in data.items():
        setattr(group, key, value)
    if bank is not Ellipsis:
        bank = bank or {}
        group.bank_name = bank.get("bank_name")
        group.bank_account_number = bank.get("account_number")
        group.bank_account_holder = bank.get("account_holder")


def new_group(session: Session, data: dict, *, region_scope: str, actor: str) -> Group:
    """A draft group, checked and added to the session but not yet announced."""
    _check_region(session, data["region_code"], region_scope)
    group = Group(id=uuid.uuid4(), status="draft", version=0, created_by=actor)
    _apply_fields(group, dict(data))
    session.add(group)
    return group


def register_group(
    session: Session, outbox: Outbox, data: dict, *, region_scope: str, actor: str
) -> Group:
    """Create a group in draft and announce it as group.registered."""
    group = new_group(session, data, region_scope=region_scope, actor=actor)
    announce(session, outbox, "group.registered", group)
    return group


def update_group(
    session: Session, outbox: Outbox, group: Group, changes: dict, *, region_scope: str
) -> Group:
    """Change a group's details and announce group.updated."""
    if group.status == "dissolved":
        raise Conflict("A dissolved group can no longer be changed.")
    if "region_code" in changes and changes["region_code"] != group.region_code:
        _check_region(session, changes["region_code"], region_scope)
    _apply_fields(group, dict(changes))
    announce(session, outbox, "group.updated", group)
    return group


# --- The status workflow: a table of transitions, not a chain of ifs. ---------------------

Guard = Callable[[Session, Group, Rules], list[dict]]


def composition_problems(session: Session, group: Group, rules: Rules) -> list[dict]:
    """Why the group's members do not yet make a group that may be active (empty if they do)."""
    members = current_members(session, group.id)
    problems = []
    if not rules.min_members <= len(members) <= rules.max_members:
        problems.append(
            {
                "field": "members",
                "message": f"An active group needs {rules.min_members} to {rules.max_members} "
                f"members; it has {len(members)}.",
            }
        )
    roles = Counter(m.role for m in members)
    for role in OFFICER_ROLES:
        if roles[role] != 1:
            problems.append(
                {
                    "field": f"officers.{role}",
                    "message": f"An active group needs exactly one {role}; it has {roles[role]}.",
                }
            )
    districts = {m.village_code[:6] for m in members} | {group.region_code[:6]}
    if len(districts) > 1:
        problems.append(
            {
                "field": "members.village_code",
                "message": "All members must live in villages of the group's district "
                f"({group.region_code[:6]}); found districts {', '.join(sorted(districts))}.",
            }
        )
    return problems


def release_memberships(session: Session, group: Group) -> None:
    """A dissolved group frees its members to join another group."""
    session.execute(
        update(Member).where(Member.group_id == group.id, Member.active).values(active=False)
    )


@dataclass(frozen=True)
class Transition:
    to: str
    guards: tuple[Guard, ...] = ()
    effect: Callable[[Session, Group], None] | None = None


TRANSITIONS: dict[tuple[str, str], Transition] = {
    ("draft", "activate"): Transition("active", guards=(composition_problems,)),
    ("suspended", "activate"): Transition("active", guards=(composition_problems,)),
    ("active", "suspend"): Transition("suspended"),
    ("draft", "dissolve"): Transition("dissolved", effect=release_memberships),
    ("active", "dissolve"): Transition("dissolved", effect=release_memberships),
    ("suspended", "dissolve"): Transition("dissolved", effect=release_memberships),
}
STATUS_ROLES = ("verifikator", "kepala_dinas", "admin")


def change_status(
    session: Session, outbox: Outbox, group: Group, action: str, reason: str, rules: Rules
) -> Group:
    """Move the group through the workflow and announce group.status_changed."""
    transition = TRANSITIONS.get((group.status, action))
    if transition is None:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == group.status)
        raise Conflict(
            f"A {group.status} group cannot {action}; "
            f"possible: {', '.join(allowed) or 'nothing (final status)'}.",
            status_now=group.status,
        )
    problems = [p for guard in transition.guards for p in guard(session, group, rules)]
    if problems:
        raise Conflict(f"The group cannot {action} yet.", errors=problems)
    previous = group.status
    group.status = transition.to
    group.status_reason = reason
    group.updated_at = utcnow()
    if transition.effect:
        transition.effect(session, group)
    announce(
        session, outbox, "group.status_changed", group, previous_status=previous, reason=reason
    )
    return group


def describe_groups(session: Session, groups: list[Group]) -> list[dict]:
    """Groups as the API shows them, with member counts and officers (one query for all)."""
    officer = Member.role.in_(OFFICER_ROLES)
    summaries = {
        group_id: (count, officers or {})
        for group_id, count, officers in session.execute(
            select(
                Member.group_id,
                func.count(),
                func.json_object_agg(
                    Member.role,
                    func.json_build_object("member_id", Member.id, "name", Member.name),
                ).filter(officer),
            )
            .where(Member.group_id.in_([g.id for g in groups]), Member.removed_at.is_(None))
            .group_by(Member.group_id)
        )
    }
    return [
        {
            **{c.key: getattr(g, c.key) for c in Group.__table__.columns},
            "bank_account": _bank_account(g),
            "member_count": summaries.get(g.id, (0, {}))[0],
            "officers": summaries.get(g.id, (0, {}))[1],
        }
        for g in groups
    ]


def _bank_account(group: Group) -> dict | None:
    if not group.bank_account_number:
        return None
    return {
        "bank_name": group.bank_name,
        "account_number": group.bank_account_number,
        "account_holder": group.bank_account_holder,
    }
