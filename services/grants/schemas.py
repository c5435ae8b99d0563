"""The grant API's request and response schemas."""

from __future__ import annotations

import marshmallow as ma

from shared import shapes
from shared.pagination import PageArgs
from shared.shapes import OfficersSchema, Output


def officers_of(kept: dict) -> dict:
    """The officers as kept; one kept as a bare member id (before names were kept) has no name."""
    return {
        role: officer if isinstance(officer, dict) else {"member_id": officer, "name": None}
        for role, officer in kept.items()
    }


class KeptOfficers(ma.fields.Nested):
    """A group's officers as this service keeps them, in the registry's shape."""

    def __init__(self, **kwargs):
        super().__init__(OfficersSchema, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(officers_of(value or {}), attr, obj, **kwargs)


class GroupProjectionSchema(Output):
    id = ma.fields.UUID()
    version = ma.fields.Integer(metadata={"description": "the registry's version of the group"})
    name = ma.fields.String()
    region_code = ma.fields.String(metadata=shapes.VILLAGE_CODE)
    status = shapes.group_status()
    business_type = ma.fields.String(allow_none=True)
    member_count = ma.fields.Integer()
    officers = KeptOfficers()
    updated_at = ma.fields.AwareDateTime()


class GroupQuerySchema(PageArgs):
    status = shapes.group_status()
