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


class BankAccountSnapshot(ma.Schema):
    """The group's account, which only the grant service's disbursement reads in full."""

    bank_name = ma.fields.String(required=True)
    account_number = ma.fields.String(required=True)
    account_holder = ma.fields.String(required=True)


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
    # Absent in snapshots written before accounts travelled with the group.
    bank_account = ma.fields.Nested(
        BankAccountSnapshot,
        load_default=None,
        allow_none=True,
        metadata={"description": "null while the group has no account; only disbursement reads it"},
    )


class GroupEvent(ma.Schema):
    group = ma.fields.Nested(GroupSnapshot, required=True)


class GroupStatusChanged(GroupEvent):
    previous_status = ma.fields.String(required=True)
    reason = ma.fields.String(required=True, allow_none=True)


class MemberEvent(GroupEvent):
    member = ma.fields.Nested(MemberSnapshot, required=True)


GRANT_STAGES = (
    "draft",
    "submitted",
    "verified",
    "recommended",
    "approved",
    "disbursed",
    "reported",
    "report_accepted",
    "monitored",
    "closed",
    "rejected",
    "cancelled",
)


class GrantSnapshot(ma.Schema):
    """An application's state after the change; `version` grows with every step."""

    grant_id = ma.fields.UUID(required=True)
    version = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1))
    program_id = ma.fields.UUID(required=True)
    group_id = ma.fields.UUID(required=True)
    group_name = ma.fields.String(required=True)
    region_code = ma.fields.String(required=True)
    stage = ma.fields.String(required=True)
    amount = ma.fields.Integer(required=True, metadata={"description": "whole rupiah"})
    workflow_key = ma.fields.String(required=True)
    workflow_version = ma.fields.Integer(required=True)
    due_at = ma.fields.AwareDateTime(required=True, allow_none=True)


class GrantEvent(ma.Schema):
    grant = ma.fields.Nested(GrantSnapshot, required=True)


class GrantCreated(GrantEvent):
    actor_role = ma.fields.String(required=True)


class GrantStageChanged(GrantEvent):
    from_ = ma.fields.String(data_key="from", required=True)
    to = ma.fields.String(required=True)
    action = ma.fields.String(required=True)
    actor_role = ma.fields.String(required=True)
    comment = ma.fields.String(required=True, allow_none=True)
    decree_id = ma.fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={"description": "the decree that approved it, else null"},
    )


class GrantDisbursed(GrantEvent):
    amount = ma.fields.Integer(required=True)
    transfer_reference = ma.fields.String(required=True)
    transfer_date = ma.fields.Date(required=True)
    report_due_at = ma.fields.AwareDateTime(required=True, allow_none=True)


class GrantDeadline(GrantEvent):
    """A stage's deadline passed (or, for grant.report_due, draws near) with no step taken."""

    stage = ma.fields.String(required=True)
    due_at = ma.fields.AwareDateTime(required=True)
    responsible_role = ma.fields.String(required=True)


class DecreeFailure(ma.Schema):
    grant_id = ma.fields.UUID(required=True)
    guards = ma.fields.List(ma.fields.String(), required=True)


class DecreeIssued(ma.Schema):
    decree_id = ma.fields.UUID(required=True)
    number = ma.fields.String(required=True)
    decree_date = ma.fields.Date(required=True)
    signer = ma.fields.String(required=True)
    region_code = ma.fields.String(required=True)
    approved = ma.fields.List(
        ma.fields.UUID(),
        required=True,
        metadata={"description": "the ids of the applications it approved"},
    )
    failed = ma.fields.List(
        ma.fields.Nested(DecreeFailure),
        required=True,
        metadata={"description": "each grant the decree could not approve, with its failed guards"},
    )


class NotificationEvent(ma.Schema):
    """A message's outcome: never the full phone number or address."""

    message_id = ma.fields.UUID(required=True)
    event_id = ma.fields.UUID(required=True)
    event_type = ma.fields.String(required=True)
    channel = ma.fields.String(required=True, validate=ma.validate.OneOf(("sms", "email")))
    status = ma.fields.String(required=True)
    recipient_masked = ma.fields.String(required=True)
    group_id = ma.fields.UUID(required=True, allow_none=True)
    grant_id = ma.fields.UUID(required=True, allow_none=True)
    region_code = ma.fields.String(required=True)
    provider = ma.fields.String(required=True, allow_none=True)
    provider_message_id = ma.fields.String(required=True, allow_none=True)
    attempts = ma.fields.Integer(required=True)
    error = ma.fields.String(required=True, allow_none=True)


@dataclass(frozen=True)
class Contract:
    type: str
    version: int
    schema: type[ma.Schema]
    # One sentence: the fact the event announces (the event catalogue shows it).
    summary: str


CONTRACTS: dict[str, Contract] = {
    c.type: c
    for c in (
        Contract(
            "group.registered",
            1,
            GroupEvent,
            "A group was registered, by the API or by an import; the snapshot is its first state.",
        ),
        Contract("group.updated", 1, GroupEvent, "A group's details were changed."),
        Contract(
            "group.status_changed",
            1,
            GroupStatusChanged,
            "A group moved through its workflow (activated, suspended, dissolved, ...).",
        ),
        Contract("member.added", 1, MemberEvent, "A member household joined a group."),
        Contract("member.updated", 1, MemberEvent, "A member's details were changed."),
        Contract("member.removed", 1, MemberEvent, "A member left a group."),
        Contract(
            "grant.created",
            1,
            GrantCreated,
            "A grant application was created: the first entry of its history.",
        ),
        Contract(
            "grant.stage_changed",
            1,
            GrantStageChanged,
            "An action moved a grant application from one stage to another.",
        ),
        Contract(
            "grant.disbursed",
            1,
            GrantDisbursed,
            "A grant's transfer was recorded; it is also announced as a stage change.",
        ),
        Contract(
            "grant.deadline_passed",
            1,
            GrantDeadline,
            "A stage's deadline passed with no step taken; announced once per application, "
            "stage and due time.",
        ),
        Contract(
            "grant.report_due",
            1,
            GrantDeadline,
            "A grant's usage report falls due within KUBE_REPORT_REMINDER_DAYS; announced once.",
        ),
        Contract(
            "decree.issued",
            1,
            DecreeIssued,
            "A decree approved a batch of applications; those whose guards failed are listed.",
        ),
        Contract(
            "notification.sent",
            1,
            NotificationEvent,
            "A provider accepted a message (SMS or email) for delivery.",
        ),
        Contract(
            "notification.failed",
            1,
            NotificationEvent,
            "A message failed for good: refused, unreachable, interrupted or reported failed.",
        ),
    )
}


def contract_for(event_type: str) -> Contract:
    """The contract of an event type; KeyError for a type nobody declared."""
    return CONTRACTS[event_type]
