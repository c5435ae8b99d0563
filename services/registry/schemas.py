"""The registry API's request and response schemas."""

from __future__ import annotations

import marshmallow as ma

from shared.pagination import PageArgs


class GroupCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=200))
    region_code = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^\d{10}$", error="Must be a 10-digit village code."),
    )
    business_type = ma.fields.String(load_default=None, validate=ma.validate.Length(max=100))


class GroupSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String()
    region_code = ma.fields.String()
    business_type = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    version = ma.fields.Integer()
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class GroupQuerySchema(PageArgs):
    region = ma.fields.String(load_default=None, validate=ma.validate.Regexp(r"^\d{2,10}$"))
