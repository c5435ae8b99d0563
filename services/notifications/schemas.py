"""The notification API's request and response schemas."""

from __future__ import annotations

import marshmallow as ma

from shared.pagination import PageArgs
from shared.validation import Schema


class ContactSchema(Schema):
    member_id = ma.fields.UUID()
    name = ma.fields.String()
    role = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    language = ma.fields.String()


class RecipientGroupSchema(Schema):
    id = ma.fields.UUID()
    version = ma.fields.Integer()
    name = ma.fields.String()
    region_code = ma.fields.String()
    status = ma.fields.String()
    updated_at = ma.fields.AwareDateTime()
    contacts = ma.fields.List(ma.fields.Nested(ContactSchema))


class RecipientGroupQuerySchema(PageArgs):
    pass
