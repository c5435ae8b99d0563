"""The grant API's request and response schemas."""

from __future__ import annotations

import marshmallow as ma

from shared.pagination import PageArgs
from shared.validation import Schema


class GroupProjectionSchema(Schema):
    id = ma.fields.UUID()
    version = ma.fields.Integer()
    name = ma.fields.String()
    region_code = ma.fields.String()
    status = ma.fields.String()
    business_type = ma.fields.String(allow_none=True)
    member_count = ma.fields.Integer()
    officers = ma.fields.Dict()
    updated_at = ma.fields.AwareDateTime()


class GroupQuerySchema(PageArgs):
    status = ma.fields.String(load_default=None)
