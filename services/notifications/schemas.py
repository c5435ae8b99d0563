"""The notification API's request and response schemas."""

from __future__ import annotations

import marshmallow as ma

from shared import shapes
from shared.pagination import PageArgs
from shared.shapes import Output


class ContactSchema(Output):
    member_id = ma.fields.UUID()
    name = ma.fields.String()
    role = shapes.member_role()
    phone = ma.fields.String(allow_none=True, metadata=shapes.PHONE)
    email = ma.fields.String(allow_none=True, metadata={"format": "email"})
    language = shapes.language()


class RecipientGroupSchema(Output):
    id = ma.fields.UUID()
    version = ma.fields.Integer(metadata={"description": "the registry's version of the group"})
    name = ma.fields.String()
    region_code = ma.fields.String(metadata=shapes.VILLAGE_CODE)
    status = shapes.group_status()
    updated_at = ma.fields.AwareDateTime()
    contacts = ma.fields.List(ma.fields.Nested(ContactSchema))


class RecipientGroupQuerySchema(PageArgs):
    pass
