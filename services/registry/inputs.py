"""What the registry accepts for a group and a member, whichever way it arrives (the API or
an import file): marshmallow rules, so one load names every bad field at once."""

from __future__ import annotations

from datetime import date

import marshmallow as ma

from services.registry.identity import (
    IdentityError,
    check_nik_agrees,
    normalize_email,
    normalize_phone,
    parse_nik,
    parse_region_code,
    validate_kk,
)
from shared import shapes
from shared.validation import Choice, Schema

GENDERS = ("F", "M")


def identity_rule(check):
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


def not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Must not be blank.")


def not_future(value: date) -> None:
    if value > date.today():
        raise ma.ValidationError("Must not be in the future.")


# What the OpenAPI document states of identity fields, so a generated client checks the same
# shape the server does (the server checks more: dates in a NIK, real village codes).
NIK = {"pattern": r"^[0-9]{16}$", "example": "6472014507800003"}
KK_NUMBER = {"pattern": r"^[0-9]{16}$", "example": "6472010101200001"}
PHONE = {
    "pattern": r"^[ .-]*(\+62|62|0)[ .-]*8[0-9 .-]{7,20}$",
    "maxLength": 30,
    "example": "081234567890",
}
VILLAGE_CODE = {
    "pattern": r"^\s*([0-9]{10}|[0-9]{2}\.[0-9]{2}\.[0-9]{2}\.[0-9]{4})\s*$",
    "example": "6472011001",
}
EMAIL = {"format": "email", "maxLength": 254}
AGREES_WITH_NIK = "must agree with the NIK, and is taken from it when a NIK is given without it"


class BankAccount(Schema):
    bank_name = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=100))
    account_number = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^\d{5,30}$", error="Must be 5 to 30 digits."),
    )
    account_holder = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=200))


class GroupInput(Schema):
    name = ma.fields.String(required=True, validate=[ma.validate.Length(min=3, max=200), not_blank])
    region_code = NormalizedString(
        _village,
        required=True,
        metadata={"description": "the group's village (10 digits, or dotted)", **VILLAGE_CODE},
    )
    address = ma.fields.String(load_default=None, validate=ma.validate.Length(max=500))
    business_type = ma.fields.String(load_default=None, validate=ma.validate.Length(max=100))
    founded_on = ma.fields.Date(load_default=None, validate=not_future)
    bank_account = ma.fields.Nested(BankAccount, load_default=None, allow_none=True)


class MemberInput(Schema):
    nik = ma.fields.String(required=True, validate=identity_rule(parse_nik), metadata=NIK)
    kk_number = ma.fields.String(
        required=True, validate=identity_rule(validate_kk), metadata=KK_NUMBER
    )
    name = ma.fields.String(required=True, validate=[ma.validate.Length(min=2, max=200), not_blank])
    gender = Choice(
        "Gender",
        GENDERS,
        load_default=None,
        metadata={"description": AGREES_WITH_NIK},
    )
    birth_date = ma.fields.Date(load_default=None, metadata={"description": AGREES_WITH_NIK})
    phone = NormalizedString(normalize_phone, required=True, metadata=PHONE)
    email = NormalizedString(normalize_email, load_default=None, allow_none=True, metadata=EMAIL)
    role = shapes.member_role(load_default="anggota")
    language = shapes.language(load_default="id")
    village_code = NormalizedString(
        _village,
        load_default=None,
        metadata={
            "description": "the member's village (10 digits, or dotted); on joining, the "
            "group's village when not given",
            **VILLAGE_CODE,
        },
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
