"""Event contracts: one marshmallow payload schema per event type, shared by all services."""

from __future__ import annotations

from dataclasses import dataclass

import marshmallow as ma

MEMBER_ROLES = ("ketua", "sekretaris", "bendahara", "anggota")
GROUP_STATUSES = ("draft", "active", "suspended", "dissolved")
LANGUAGES = ("id", "en")


class MemberSnapshot(ma.Schema):
    """What other services may know of a member: contact data, never the full NIK."""

    member_id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(MEMBER_ROLES))
    nik_masked = ma.fields.String(required=True)
    phone = ma.fields.String(required=True, allow_none=True)
    email = ma.fields.String(required=True, allow_none=True)
    language = ma.fields.String(load_default="id", validate=ma.validate.OneOf(LANGUAGES))


class GroupSnapshot(ma.Schema):
    """A group's state after the change; `version` grows with every change, so consumers
    apply a snapshot only when it is newer than what they hold (events may arrive out of order)."""

    group_id = ma.fields.UUID(required=True)
    version = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1))
    name = ma.fields.String(required=True)
    region_code = ma.fields.String(required=True)
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(GROUP_STATUSES))
    business_type = ma.fields.String(required=True, allow_none=True)
    member_count = ma.fields.Integer(required=True)
    members = ma.fields.List(ma.fields.Nested(MemberSnapshot), required=True)


class GroupEvent(ma.Schema):
    group = ma.fields.Nested(GroupSnapshot, required=True)


class GroupStatusChanged(GroupEvent):
    previous_status = ma.fields.String(required=True)
    reason = ma.fields.String(required=True, allow_none=True)


class MemberEvent(GroupEvent):
    member = ma.fields.Nested(MemberSnapshot, required=True)


@dataclass(frozen=True)
class Contract:
    type: str
    version: int
    schema: type[ma.Schema]


CONTRACTS: dict[str, Contract] = {
    c.type: c
    for c in (
        Contract("group.registered", 1, GroupEvent),
        Contract("group.updated", 1, GroupEvent),
        Contract("group.status_changed", 1, GroupStatusChanged),
        Contract("member.added", 1, MemberEvent),
        Contract("member.updated", 1, MemberEvent),
        Contract("member.removed", 1, MemberEvent),
    )
}


def contract_for(event_type: str) -> Contract:
    """The contract of an event type; KeyError for a type nobody declared."""
    return CONTRACTS[event_type]
