"""Groups: registering, editing, the status workflow, and describing them to other services
(the API's reads are in `reads`)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from services.registry.identity import mask_nik
from services.registry.models import Group, Member
from services.registry.regions import check_village
from shared.db import utcnow
from shared.errors import Conflict, InvalidInput
from shared.events.outbox import Outbox
from shared.scope import RegionScope
from shared.workflow import Guard, GuardFailure, Transition, Workflow

OFFICER_ROLES = ("ketua", "sekretaris", "bendahara")
# What activation verified, and so what an active group keeps until it is suspended.
VERIFIED_GROUP_FIELDS = ("region_code", "bank_account")
VERIFIED_MEMBER_FIELDS = ("nik", "kk_number", "name", "gender", "birth_date", "village_code")


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
        # The grant service pays the grant to this account, and to no other.
        "bank_account": _bank_account(group),
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


def members_of(group_id: uuid.UUID) -> Select:
    """The group's current members, in the order they joined."""
    return (
        select(Member)
        .where(Member.group_id == group_id, Member.removed_at.is_(None))
        .order_by(Member.created_at, Member.id)
    )


def current_members(session: Session, group_id: uuid.UUID) -> list[Member]:
    return list(session.scalars(members_of(group_id)))


def announce(session: Session, outbox: Outbox, event_type: str, group: Group, **extra) -> None:
    """Bump the group's version and record the event carrying its new state."""
    group.version += 1
    session.flush()
    members = current_members(session, group.id)
    outbox.add(session, event_type, {"group": group_snapshot(group, members), **extra})


def find_group(
    session: Session, group_id: uuid.UUID, scope: RegionScope, *, lock: bool = False
) -> Group:
    """The group, if it lies in the caller's region; otherwise NotFound, so existence never
    leaks."""
    statement = select(Group).where(Group.id == group_id)
    if lock:
        # Changes to one group (and its members) are serialised on the group row.
        statement = statement.with_for_update()
    return scope.one(session, statement, Group.region_code, what="group")


def _check_region(session: Session, region_code: str, scope: RegionScope) -> None:
    scope.require(region_code, field="region_code")
    problem = check_village(session, region_code)
    if problem:
        raise InvalidInput.field("region_code", problem)


def _apply_fields(group: Group, data: dict) -> None:
    bank = data.pop("bank_account", Ellipsis)
    for key, value in data.items():
        setattr(group, key, value)
    if bank is not Ellipsis:
        bank = bank or {}
        group.bank_name = bank.get("bank_name")
        group.bank_account_number = bank.get("account_number")
        group.bank_account_holder = bank.get("account_holder")


def new_group(session: Session, data: dict, *, scope: RegionScope, actor: str) -> Group:
    """A draft group, checked and added to the session but not yet announced."""
    _check_region(session, data["region_code"], scope)
    group = Group(id=uuid.uuid4(), status="draft", version=0, created_by=actor)
    _apply_fields(group, dict(data))
    session.add(group)
    return group


def register_group(
    session: Session, outbox: Outbox, data: dict, *, scope: RegionScope, actor: str
) -> Group:
    """Create a group in draft and announce it as group.registered."""
    group = new_group(session, data, scope=scope, actor=actor)
    announce(session, outbox, "group.registered", group)
    return group


def update_group(
    session: Session, outbox: Outbox, group: Group, changes: dict, *, scope: RegionScope
) -> Group:
    """Change a group's details and announce group.updated. What was verified (its village,
    its bank account) does not change while the group is active: suspend it, change it, and
    activate it again, so the activation's checks run on the new data."""
    if group.status == "dissolved":
        raise Conflict("A dissolved group can no longer be changed.")
    if group.status == "active":
        verified = [f for f in VERIFIED_GROUP_FIELDS if f in changes]
        if verified:
            raise Conflict(
                "An active group's village and bank account were verified; suspend the group "
                "before changing them, then activate it again.",
                errors=[
                    {"field": f, "message": "verified data: suspend the group to change it"}
                    for f in verified
                ],
            )
    if "region_code" in changes and changes["region_code"] != group.region_code:
        _check_region(session, changes["region_code"], scope)
    _apply_fields(group, dict(changes))
    announce(session, outbox, "group.updated", group)
    return group


# --- The status workflow: a table on the shared engine, not a chain of ifs. -----------------


@dataclass(frozen=True)
class StatusChange:
    """What the workflow's guards and effects work with."""

    session: Session
    rules: Rules


def _member_count(group: Group, change: StatusChange) -> list[GuardFailure]:
    count = len(current_members(change.session, group.id))
    low, high = change.rules.min_members, change.rules.max_members
    if low <= count <= high:
        return []
    return [
        GuardFailure(
            field="members",
            message=f"An active group needs {low} to {high} members; it has {count}.",
            message_id=f"Kelompok aktif harus beranggotakan {low} sampai {high} KK; "
            f"saat ini {count}.",
        )
    ]


def _officers_complete(group: Group, change: StatusChange) -> list[GuardFailure]:
    roles = Counter(m.role for m in current_members(change.session, group.id))
    return [
        GuardFailure(
            field=f"officers.{role}",
            message=f"An active group needs exactly one {role}; it has {roles[role]}.",
            message_id=f"Kelompok aktif harus punya tepat satu {role}; saat ini {roles[role]}.",
        )
        for role in OFFICER_ROLES
        if roles[role] != 1
    ]


def _same_district(group: Group, change: StatusChange) -> list[GuardFailure]:
    members = current_members(change.session, group.id)
    districts = {m.village_code[:6] for m in members} | {group.region_code[:6]}
    if len(districts) <= 1:
        return []
    found = ", ".join(sorted(districts))
    return [
        GuardFailure(
            field="members.village_code",
            message="All members must live in villages of the group's district "
            f"({group.region_code[:6]}); found districts {found}.",
            message_id="Semua anggota harus tinggal di desa/kelurahan dalam kecamatan "
            f"kelompok ({group.region_code[:6]}); ditemukan kecamatan {found}.",
        )
    ]


def _release_memberships(group: Group, change: StatusChange) -> None:
    """A dissolved group frees its members to join another group."""
    change.session.execute(
        update(Member).where(Member.group_id == group.id, Member.active).values(active=False)
    )


STATUS_ROLES = frozenset({"verifikator", "kepala_dinas", "admin"})
_COMPLETE = (
    Guard("member_count", _member_count),
    Guard("officers_complete", _officers_complete),
    Guard("same_district", _same_district),
)
GROUP_WORKFLOW = Workflow(
    "group",
    [
        Transition("draft", "activate", "active", STATUS_ROLES, _COMPLETE),
        Transition("suspended", "activate", "active", STATUS_ROLES, _COMPLETE),
        Transition("active", "suspend", "suspended", STATUS_ROLES),
        Transition("draft", "dissolve", "dissolved", STATUS_ROLES, effects=(_release_memberships,)),
        Transition(
            "active", "dissolve", "dissolved", STATUS_ROLES, effects=(_release_memberships,)
        ),
        Transition(
            "suspended", "dissolve", "dissolved", STATUS_ROLES, effects=(_release_memberships,)
        ),
    ],
)
GROUP_ACTIONS = tuple(GROUP_WORKFLOW.actions)


def change_status(
    session: Session,
    outbox: Outbox,
    group: Group,
    action: str,
    reason: str,
    rules: Rules,
    *,
    roles: Iterable[str],
) -> Group:
    """Move the group through its workflow and announce group.status_changed."""
    previous = group.status
    GROUP_WORKFLOW.apply(group, action, roles, StatusChange(session, rules))
    group.status_reason = reason
    group.updated_at = utcnow()
    announce(
        session, outbox, "group.status_changed", group, previous_status=previous, reason=reason
    )
    return group


def _bank_account(group: Group) -> dict | None:
    if not group.bank_account_number:
        return None
    return {
        "bank_name": group.bank_name,
        "account_number": group.bank_account_number,
        "account_holder": group.bank_account_holder,
    }
