"""The registry API's request and response schemas (what it accepts of a group or member
is in `inputs`, shared with imports)."""

from __future__ import annotations

import marshmallow as ma

from services.registry.groups import GROUP_ACTIONS
from services.registry.identity import mask_kk, mask_nik, parse_nik
from services.registry.inputs import (
    BankAccount,
    GroupInput,
    MemberInput,
    identity_rule,
    not_blank,
    not_future,
)
from shared.events.contracts import GROUP_STATUSES
from shared.pagination import PageArgs
from shared.validation import Schema

VISIT_TOPICS = (
    "business_management",
    "marketing",
    "access_to_capital",
    "bookkeeping",
    "other",
)


class GroupPatchSchema(GroupInput):
    """Any subset of a group's fields; use with `partial=True`."""


class GroupStatusChangeSchema(Schema):
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(GROUP_ACTIONS))
    reason = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=3, max=1000), not_blank]
    )


class OfficerSchema(Schema):
    member_id = ma.fields.UUID()
    name = ma.fields.String()


class VisitSummarySchema(Schema):
    visited_on = ma.fields.Date()
    topics = ma.fields.List(ma.fields.String())
    monthly_revenue = ma.fields.Integer(allow_none=True)


class RevenuePointSchema(Schema):
    visited_on = ma.fields.Date()
    monthly_revenue = ma.fields.Integer()


class GroupSchema(Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()
    region_code = ma.fields.String()
    address = ma.fields.String(allow_none=True)
    business_type = ma.fields.String(allow_none=True)
    founded_on = ma.fields.Date(allow_none=True)
    bank_account = ma.fields.Nested(BankAccount, allow_none=True)
    status = ma.fields.String(metadata={"enum": list(GROUP_STATUSES)})
    status_reason = ma.fields.String(allow_none=True)
    member_count = ma.fields.Integer()
    officers = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(OfficerSchema))
    version = ma.fields.Integer()
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class GroupDetailSchema(GroupSchema):
    last_visit = ma.fields.Nested(VisitSummarySchema, allow_none=True)
    revenue_trend = ma.fields.List(ma.fields.Nested(RevenuePointSchema))
    revenue_direction = ma.fields.String(
        allow_none=True, metadata={"enum": ["rising", "falling", "steady"]}
    )


class GroupQuerySchema(PageArgs):
    region = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(r"^(\d{2}|\d{4}|\d{6}|\d{10})$", error="Not a region code."),
    )
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(GROUP_STATUSES))
    business_type = ma.fields.String(load_default=None)
    q = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=100))


class MemberPatchSchema(MemberInput):
    """Any subset of a member's fields; use with `partial=True`."""


class MemberSchema(Schema):
    """A member as lists show it: NIK and No. KK masked."""

    id = ma.fields.UUID()
    group_id = ma.fields.UUID()
    nik = ma.fields.Function(lambda m: mask_nik(m.nik))
    kk_number = ma.fields.Function(lambda m: mask_kk(m.kk_number))
    name = ma.fields.String()
    gender = ma.fields.String()
    birth_date = ma.fields.Date()
    phone = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    role = ma.fields.String()
    language = ma.fields.String()
    village_code = ma.fields.String()
    active = ma.fields.Boolean()
    removed_at = ma.fields.AwareDateTime(allow_none=True)
    version = ma.fields.Integer()
    created_at = ma.fields.AwareDateTime()


class MemberFullSchema(MemberSchema):
    """A single member's read for roles that may see full identity numbers."""

    nik = ma.fields.String()
    kk_number = ma.fields.String()


class MemberLookupQuerySchema(PageArgs):
    nik = ma.fields.String(required=True, validate=identity_rule(parse_nik))


class MembershipSchema(Schema):
    member_id = ma.fields.UUID(attribute="id")
    nik = ma.fields.Function(lambda m: mask_nik(m.nik))
    name = ma.fields.String()
    role = ma.fields.String()
    active = ma.fields.Boolean()
    removed_at = ma.fields.AwareDateTime(allow_none=True)
    group_id = ma.fields.UUID()
    group_name = ma.fields.Function(lambda m: m.group.name)
    group_status = ma.fields.Function(lambda m: m.group.status)
    group_region_code = ma.fields.Function(lambda m: m.group.region_code)


class MemberRemoveSchema(Schema):
    reason = ma.fields.String(load_default=None, validate=ma.validate.Length(max=1000))


class VisitWriteSchema(Schema):
    visited_on = ma.fields.Date(required=True, validate=not_future)
    topics = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(VISIT_TOPICS)),
        required=True,
        validate=ma.validate.Length(min=1, max=len(VISIT_TOPICS)),
    )
    notes = ma.fields.String(load_default=None, validate=ma.validate.Length(max=5000))
    monthly_revenue = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=ma.validate.Range(min=0, max=10**12),
        metadata={"description": "the group's reported monthly revenue, whole rupiah"},
    )


class VisitSchema(VisitWriteSchema):
    id = ma.fields.UUID()
    group_id = ma.fields.UUID()
    pendamping = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class PersonalDataAccessSchema(Schema):
    id = ma.fields.UUID()
    member_id = ma.fields.UUID()
    accessed_by = ma.fields.String()
    roles = ma.fields.List(ma.fields.String())
    request_id = ma.fields.String(allow_none=True)
    accessed_at = ma.fields.AwareDateTime()


class PersonalDataAccessQuerySchema(PageArgs):
    member_id = ma.fields.UUID(load_default=None)
