"""The registry API's request and response schemas (what it accepts of a group or member
is in `inputs`, shared with imports). A response field has the type, enum and pattern of
the request field it answers for, in the form the registry stores (plain village codes,
E.164 phones)."""

from __future__ import annotations

import marshmallow as ma

from services.registry.groups import GROUP_ACTIONS
from services.registry.identity import mask_nik, parse_nik
from services.registry.inputs import (
    EMAIL,
    GENDERS,
    NIK,
    BankAccount,
    GroupInput,
    MemberInput,
    identity_rule,
    not_blank,
    not_future,
)
from services.registry.mentoring import REVENUE_DIRECTIONS
from shared import shapes
from shared.pagination import PageArgs
from shared.shapes import OfficersSchema, Output
from shared.validation import Choice, Schema, patch_of

VISIT_TOPICS = (
    "business_management",
    "marketing",
    "access_to_capital",
    "bookkeeping",
    "other",
)
MASKED = {"pattern": r"^[0-9]{4}\*{8}[0-9]{4}$", "example": "6472********0003"}
FULL_OR_MASKED = {
    "pattern": r"^[0-9]{4}([0-9]{8}|\*{8})[0-9]{4}$",
    "description": "in full for verifikator and admin (each read is logged), masked for others",
}


def visit_topic(**kwargs) -> Choice:
    return Choice("VisitTopic", VISIT_TOPICS, **kwargs)


class Masked(ma.fields.String):
    """A NIK or No. KK shown with all but its first and last 4 digits hidden."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else mask_nik(value)


class GroupPatchSchema(patch_of(GroupInput)):
    """The group's fields to change; a field left out stays as it is (`bank_account` whole, or
    null to remove it)."""


class GroupStatusChangeSchema(Schema):
    action = Choice("GroupAction", GROUP_ACTIONS, required=True)
    reason = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=3, max=1000), not_blank]
    )


class VisitSummarySchema(Output):
    visited_on = ma.fields.Date()
    topics = ma.fields.List(visit_topic())
    monthly_revenue = ma.fields.Integer(allow_none=True)


class RevenuePointSchema(Output):
    visited_on = ma.fields.Date()
    monthly_revenue = ma.fields.Integer()


class GroupSchema(Output):
    id = ma.fields.UUID()
    name = ma.fields.String()
    region_code = ma.fields.String(metadata=shapes.VILLAGE_CODE)
    address = ma.fields.String(allow_none=True)
    business_type = ma.fields.String(allow_none=True)
    founded_on = ma.fields.Date(allow_none=True)
    bank_account = ma.fields.Nested(BankAccount, allow_none=True)
    status = shapes.group_status()
    status_reason = ma.fields.String(allow_none=True)
    member_count = ma.fields.Integer()
    officers = ma.fields.Nested(OfficersSchema)
    version = ma.fields.Integer(metadata={"description": "grows with every change; the ETag"})
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class GroupDetailSchema(GroupSchema):
    last_visit = ma.fields.Nested(VisitSummarySchema, allow_none=True)
    revenue_trend = ma.fields.List(ma.fields.Nested(RevenuePointSchema))
    revenue_direction = Choice(
        "RevenueDirection",
        REVENUE_DIRECTIONS,
        allow_none=True,
        metadata={"description": "null until two visits have reported revenue"},
    )


class GroupQuerySchema(PageArgs):
    region = ma.fields.String(
        validate=ma.validate.Regexp(r"^(\d{2}|\d{4}|\d{6}|\d{10})$", error="Not a region code."),
        metadata={"description": "a region-code prefix: province, regency, district or village"},
    )
    status = shapes.group_status()
    business_type = ma.fields.String(metadata={"description": "exact, in any case"})
    q = ma.fields.String(
        validate=ma.validate.Length(min=1, max=100),
        metadata={"description": "part of the group's name"},
    )


class MemberPatchSchema(patch_of(MemberInput, not_null=("gender", "birth_date", "village_code"))):
    """The member's fields to change; a field left out stays as it is."""


class MemberSchema(Output):
    """A member as lists show it: NIK and No. KK masked."""

    id = ma.fields.UUID()
    group_id = ma.fields.UUID()
    nik = Masked(metadata=MASKED)
    kk_number = Masked(metadata=MASKED)
    name = ma.fields.String()
    gender = Choice("Gender", GENDERS)
    birth_date = ma.fields.Date()
    phone = ma.fields.String(allow_none=True, metadata=shapes.PHONE)
    email = ma.fields.String(allow_none=True, metadata=EMAIL)
    role = shapes.member_role()
    language = shapes.language()
    village_code = ma.fields.String(metadata=shapes.VILLAGE_CODE)
    active = ma.fields.Boolean()
    removed_at = ma.fields.AwareDateTime(allow_none=True)
    version = ma.fields.Integer(metadata={"description": "grows with every change; the ETag"})
    created_at = ma.fields.AwareDateTime()


class MemberFullSchema(MemberSchema):
    """A single member's read: NIK and No. KK in full for verifikator and admin (and logged),
    masked for every other role."""

    nik = ma.fields.String(metadata=FULL_OR_MASKED)
    kk_number = ma.fields.String(metadata=FULL_OR_MASKED)


class MemberLookupQuerySchema(PageArgs):
    nik = ma.fields.String(required=True, validate=identity_rule(parse_nik), metadata=NIK)


class MemberSearchSchema(Schema):
    """A NIK to look up, in the body: URLs end up in proxy and server logs, bodies do not."""

    nik = ma.fields.String(required=True, validate=identity_rule(parse_nik), metadata=NIK)


class MembershipSchema(Output):
    member_id = ma.fields.UUID(attribute="id")
    nik = Masked(metadata=MASKED)
    name = ma.fields.String()
    role = shapes.member_role()
    active = ma.fields.Boolean()
    removed_at = ma.fields.AwareDateTime(allow_none=True)
    group_id = ma.fields.UUID()
    group_name = ma.fields.String(attribute="group.name")
    group_status = shapes.group_status(attribute="group.status")
    group_region_code = ma.fields.String(
        attribute="group.region_code", metadata=shapes.VILLAGE_CODE
    )


class MemberRemoveSchema(Schema):
    reason = ma.fields.String(load_default=None, validate=ma.validate.Length(max=1000))


class VisitWriteSchema(Schema):
    visited_on = ma.fields.Date(required=True, validate=not_future)
    topics = ma.fields.List(
        visit_topic(),
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


class VisitSchema(Output):
    id = ma.fields.UUID()
    group_id = ma.fields.UUID()
    visited_on = ma.fields.Date()
    topics = ma.fields.List(visit_topic())
    notes = ma.fields.String(allow_none=True)
    monthly_revenue = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "the group's reported monthly revenue, whole rupiah"},
    )
    pendamping = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class PersonalDataAccessSchema(Output):
    id = ma.fields.UUID()
    member_id = ma.fields.UUID()
    accessed_by = ma.fields.String()
    roles = ma.fields.List(ma.fields.String())
    request_id = ma.fields.String(allow_none=True)
    accessed_at = ma.fields.AwareDateTime()


class PersonalDataAccessQuerySchema(PageArgs):
    member_id = ma.fields.UUID()
