"""The registry API's request and response schemas; identity rules are checked here so a
422 names every bad field at once."""

from __future__ import annotations

from datetime import date

import marshmallow as ma

from services.registry.identity import (
    IdentityError,
    check_nik_agrees,
    mask_kk,
    mask_nik,
    normalize_email,
    normalize_phone,
    parse_nik,
    parse_region_code,
    validate_kk,
)
from shared.events.contracts import GROUP_STATUSES, LANGUAGES, MEMBER_ROLES
from shared.pagination import PageArgs

VISIT_TOPICS = (
    "business_management",
    "marketing",
    "access_to_capital",
    "bookkeeping",
    "other",
)


def _identity(check):
    """Turn an identity check into a marshmallow validator."""

    def validate(value):
        try:
            check(value)
        except IdentityError as exc:
            raise ma.ValidationError(exc.message) from exc

    return validate


class NormalizedString(ma.fields.String):
    """A string field whose value is replaced by `normalize(value)` on load."""

    def __init__(self, normalize, **kwargs):
        super().__init__(**kwargs)
        self.normalize = normalize

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.normalize(text)
        except IdentityError as exc:
            raise ma.ValidationError(exc.message) from exc


def _village(value: str) -> str:
    return parse_region_code(value, level="village").code


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


def _not_future(value: date) -> None:
    if value > date.today():
        raise ma.ValidationError("Must not be in the future.")


class BankAccountSchema(ma.Schema):
    bank_name = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=100))
    account_number = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^\d{5,30}$", error="Must be 5 to 30 digits."),
    )
    account_holder = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=200))


class GroupWriteSchema(ma.Schema):
    name = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=3, max=200), _not_blank]
    )
    region_code = NormalizedString(
        _village, required=True, metadata={"description": "10-digit village code"}
    )
    address = ma.fields.String(load_default=None, validate=ma.validate.Length(max=500))
    business_type = ma.fields.String(load_default=None, validate=ma.validate.Length(max=100))
    founded_on = ma.fields.Date(load_default=None, validate=_not_future)
    bank_account = ma.fields.Nested(BankAccountSchema, load_default=None, allow_none=True)


class GroupPatchSchema(GroupWriteSchema):
    """Any subset of a group's fields; use with `partial=True`."""


class GroupStatusChangeSchema(ma.Schema):
    action = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["activate", "suspend", "dissolve"])
    )
    reason = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=3, max=1000), _not_blank]
    )


class OfficerSchema(ma.Schema):
    member_id = ma.fields.UUID()
    name = ma.fields.String()


class VisitSummarySchema(ma.Schema):
    visited_on = ma.fields.Date()
    topics = ma.fields.List(ma.fields.String())
    monthly_revenue = ma.fields.Integer(allow_none=True)


class RevenuePointSchema(ma.Schema):
    visited_on = ma.fields.Date()
    monthly_revenue = ma.fields.Integer()


class GroupSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()
    region_code = ma.fields.String()
    address = ma.fields.String(allow_none=True)
    business_type = ma.fields.String(allow_none=True)
    founded_on = ma.fields.Date(allow_none=True)
    bank_account = ma.fields.Nested(BankAccountSchema, allow_none=True)
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


class MemberWriteSchema(ma.Schema):
    nik = ma.fields.String(required=True, validate=_identity(parse_nik))
    kk_number = ma.fields.String(required=True, validate=_identity(validate_kk))
    name = ma.fields.String(
        required=True, validate=[ma.validate.Length(min=2, max=200), _not_blank]
    )
    gender = ma.fields.String(load_default=None, validate=ma.validate.OneOf(["F", "M"]))
    birth_date = ma.fields.Date(load_default=None)
    phone = NormalizedString(normalize_phone, required=True)
    email = NormalizedString(normalize_email, load_default=None, allow_none=True)
    role = ma.fields.String(load_default="anggota", validate=ma.validate.OneOf(MEMBER_ROLES))
    language = ma.fields.String(load_default="id", validate=ma.validate.OneOf(LANGUAGES))
    village_code = NormalizedString(
        _village, load_default=None, metadata={"description": "defaults to the group's village"}
    )

    @ma.validates_schema(skip_on_field_errors=False)
    def _agrees_with_nik(self, data, **kwargs):
        """Gender and birth date, when given, must be those the NIK encodes."""
        try:
            info = parse_nik(data.get("nik", ""))
        except IdentityError:
            return  # the nik field reports its own error
        errors = check_nik_agrees(
            info, gender=data.get("gender"), birth_date=data.get("birth_date")
        )
        if errors:
            raise ma.ValidationError({e.field: [e.message] for e in errors})

    @ma.post_load
    def _fill_from_nik(self, data, **kwargs):
        if "nik" in data:
            info = parse_nik(data["nik"])
            data.setdefault("gender", None)
            data.setdefault("birth_date", None)
            data["gender"] = data["gender"] or info.gender
            data["birth_date"] = data["birth_date"] or info.birth_date
        return data


class MemberPatchSchema(MemberWriteSchema):
    """Any subset of a member's fields; use with `partial=True`."""


class MemberSchema(ma.Schema):
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
    nik = ma.fields.String(required=True, validate=_identity(parse_nik))


class MembershipSchema(ma.Schema):
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


class MemberRemoveSchema(ma.Schema):
    reason = ma.fields.String(load_default=None, validate=ma.validate.Length(max=1000))


class VisitWriteSchema(ma.Schema):
    visited_on = ma.fields.Date(required=True, validate=_not_future)
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


class PersonalDataAccessSchema(ma.Schema):
    id = ma.fields.UUID()
    member_id = ma.fields.UUID()
    accessed_by = ma.fields.String()
    roles = ma.fields.List(ma.fields.String())
    request_id = ma.fields.String(allow_none=True)
    accessed_at = ma.fields.AwareDateTime()


class PersonalDataAccessQuerySchema(PageArgs):
    member_id = ma.fields.UUID(load_default=None)
