"""Members of groups: adding, changing and removing them under the KUBE rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from services.registry.groups import (
    OFFICER_ROLES,
    VERIFIED_MEMBER_FIELDS,
    Rules,
    announce,
    member_snapshot,
)
from services.registry.identity import check_nik_agrees, mask_kk, mask_nik, parse_nik
from services.registry.models import Group, Member, PersonalDataAccess, nik_lookup
from services.registry.regions import check_village
from shared.db import utcnow
from shared.errors import Conflict, InvalidInput, NotFound
from shared.events.outbox import Outbox
from shared.scope import RegionScope

FULL_IDENTITY_ROLES = ("verifikator", "admin")


@dataclass(frozen=True)
class MemberProblem:
    """Why a member of a group being registered is refused; `index` None is the whole group."""

    index: int | None
    field: str
    message: str

    def as_error(self) -> dict:
        name = self.field if self.index is None else f"members.{self.index}.{self.field}"
        return {"field": name, "message": self.message}


class MemberProblems(Conflict):
    """A group cannot be registered with these members; each problem names its member."""

    def __init__(self, problems: list[MemberProblem]):
        problems = sorted(problems, key=lambda p: (p.index is not None, p.index or 0, p.field))
        super().__init__(
            "The group cannot be registered with these members.",
            errors=[p.as_error() for p in problems],
        )
        self.problems = problems


def taken_message(scope: RegionScope, group: Group) -> str:
    """Say where a NIK already belongs, naming the group only if the caller may see it."""
    if scope.covers(group.region_code):
        return f"already a member of the active group '{group.name}' ({group.id})"
    return "already a member of another active group"


def _require_open(group: Group) -> None:
    if group.status == "dissolved":
        raise Conflict("A dissolved group's members can no longer be changed.")


def _check_unique_nik(
    session: Session, nik: str, member_id: uuid.UUID | None, scope: RegionScope
) -> None:
    other = session.scalar(
        select(Member)
        .options(joinedload(Member.group))
        .where(Member.nik_hash == nik_lookup(nik), Member.active, Member.id != member_id)
    )
    if other is not None:
        visible = scope.covers(other.group.region_code)
        raise Conflict(
            f"NIK {mask_nik(nik)} is {taken_message(scope, other.group)}.",
            errors=[{"field": "nik", "message": "already in another active group"}],
            group_id=str(other.group_id) if visible else None,
        )


def _check_role_free(session: Session, group: Group, role: str, member_id: uuid.UUID | None):
    if role not in OFFICER_ROLES:
        return
    holder = session.scalar(
        select(Member).where(
            Member.group_id == group.id,
            Member.role == role,
            Member.active,
            Member.id != member_id,
        )
    )
    if holder is not None:
        raise Conflict(
            f"The group already has a {role} ({holder.name}); a group has exactly one.",
            errors=[{"field": "role", "message": f"the group already has a {role}"}],
        )


def _check_village(session: Session, village_code: str, group: Group, scope: RegionScope) -> None:
    scope.require(village_code, field="village_code")
    if village_code[:6] != group.region_code[:6]:
        raise InvalidInput.field(
            "village_code",
            f"The village must lie in the group's district ({group.region_code[:6]}).",
        )
    problem = check_village(session, village_code, field="village_code")
    if problem:
        raise InvalidInput.field("village_code", problem)


def _flush_or_conflict(session: Session) -> None:
    """Turn a lost race on the database's uniqueness rules into the same 409 as the checks."""
    try:
        session.flush()
    except IntegrityError as exc:
        name = getattr(exc.orig.diag, "constraint_name", "") if exc.orig else ""
        session.rollback()
        if name == "uq_members_active_nik":
            raise Conflict(
                "This NIK joined another active group at the same moment.",
                errors=[{"field": "nik", "message": "already in another active group"}],
            ) from exc
        if name == "uq_members_group_officer":
            raise Conflict(
                "Another member took this officer role at the same moment.",
                errors=[{"field": "role", "message": "role already taken"}],
            ) from exc
        raise


def add_member(
    session: Session,
    outbox: Outbox,
    group: Group,
    data: dict,
    rules: Rules,
    *,
    scope: RegionScope,
) -> Member:
    """Add a head of family to a group (the group row is locked by the caller)."""
    _require_open(group)
    count = session.scalar(
        select(func.count()).where(Member.group_id == group.id, Member.removed_at.is_(None))
    )
    if count >= rules.max_members:
        raise Conflict(
            f"The group already has {count} members, the maximum.",
            errors=[{"field": "members", "message": "group is full"}],
        )
    _check_unique_nik(session, data["nik"], None, scope)
    _check_role_free(session, group, data["role"], None)
    village = data.get("village_code") or group.region_code
    _check_village(session, village, group, scope)
    member = Member(id=uuid.uuid4(), group_id=group.id, **{**data, "village_code": village})
    session.add(member)
    _flush_or_conflict(session)
    announce(session, outbox, "member.added", group, member=member_snapshot(member))
    return member


def update_member(
    session: Session,
    outbox: Outbox,
    group: Group,
    member: Member,
    changes: dict,
    *,
    scope: RegionScope,
) -> Member:
    """Change a member's data; gender and birth date must keep agreeing with the NIK. An
    active group's members keep their verified identity until the group is suspended."""
    _require_open(group)
    if group.status == "active":
        verified = [
            f for f in VERIFIED_MEMBER_FIELDS if f in changes and changes[f] != getattr(member, f)
        ]
        if verified:
            raise Conflict(
                "The members of an active group were verified; suspend the group before "
                "changing who they are, then activate it again.",
                errors=[
                    {"field": f, "message": "verified data: suspend the group to change it"}
                    for f in verified
                ],
            )
    if "nik" in changes and changes["nik"] != member.nik:
        _check_unique_nik(session, changes["nik"], member.id, scope)
        info = parse_nik(changes["nik"])
        changes.setdefault("gender", info.gender)
        changes.setdefault("birth_date", info.birth_date)
    if "role" in changes:
        _check_role_free(session, group, changes["role"], member.id)
    if changes.get("village_code"):
        _check_village(session, changes["village_code"], group, scope)
    else:
        changes.pop("village_code", None)
    disagreements = check_nik_agrees(
        parse_nik(changes.get("nik", member.nik)),
        gender=changes.get("gender", member.gender),
        birth_date=changes.get("birth_date", member.birth_date),
    )
    if disagreements:
        raise InvalidInput(
            "Gender and birth date must agree with the NIK.",
            errors=[{"field": e.field, "message": e.message} for e in disagreements],
        )
    for key, value in changes.items():
        setattr(member, key, value)
    member.version += 1
    _flush_or_conflict(session)
    announce(session, outbox, "member.updated", group, member=member_snapshot(member))
    return member


def remove_member(session: Session, outbox: Outbox, group: Group, member: Member) -> Member:
    """Take a member out of the group; the record stays for history."""
    _require_open(group)
    member.active = False
    member.removed_at = utcnow()
    member.version += 1
    session.flush()
    announce(session, outbox, "member.removed", group, member=member_snapshot(member))
    return member


def find_member(session: Session, group: Group, member_id: uuid.UUID) -> Member:
    member = session.scalar(
        select(Member).where(Member.id == member_id, Member.group_id == group.id)
    )
    if member is None:
        raise NotFound("No member with this id in this group.")
    return member


def record_identity_access(
    session: Session, member: Member, *, user: str, roles: list[str], request_id: str | None
) -> None:
    """Write who saw a member's full NIK and No. KK to the access trail."""
    session.add(
        PersonalDataAccess(
            member_id=member.id, accessed_by=user, roles=sorted(roles), request_id=request_id
        )
    )


def access_trail(scope: RegionScope, member_id: uuid.UUID | None = None):
    """Who saw full identity numbers of members of groups in the caller's region, newest first."""
    statement = (
        select(PersonalDataAccess)
        .join(Member, Member.id == PersonalDataAccess.member_id)
        .join(Group, Group.id == Member.group_id)
        .where(scope.where(Group.region_code))
        .order_by(PersonalDataAccess.accessed_at.desc(), PersonalDataAccess.id)
    )
    if member_id:
        statement = statement.where(PersonalDataAccess.member_id == member_id)
    return statement


def masked(member: Member) -> SimpleNamespace:
    """A read-only view of a member with NIK and No. KK masked."""
    view = {c.key: getattr(member, c.key) for c in Member.__table__.columns}
    return SimpleNamespace(
        **{**view, "nik": mask_nik(member.nik), "kk_number": mask_kk(member.kk_number)}
    )
