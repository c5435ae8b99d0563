"""Shapes more than one service's API shows, defined once so a concept looks alike in every
OpenAPI document: a group's status, a member's role and language, a group's officers, the
forms of phone numbers and village codes the services answer with; and `Output`, the base of
every response body."""

from __future__ import annotations

import marshmallow as ma

from shared.events.contracts import GROUP_STATUSES, LANGUAGES, MEMBER_ROLES
from shared.validation import Choice

OFFICER_ROLES = tuple(role for role in MEMBER_ROLES if role != "anggota")

# The forms the services answer with (inputs accept more and normalise them to these).
PHONE = {"pattern": r"^\+628[0-9]{8,11}$", "example": "+6281234567890"}
VILLAGE_CODE = {"pattern": r"^[0-9]{10}$", "example": "6472011001"}


def group_status(**kwargs) -> Choice:
    """A group's place in its workflow."""
    return Choice("GroupStatus", GROUP_STATUSES, **kwargs)


def member_role(**kwargs) -> Choice:
    """A member's role in their group."""
    return Choice("MemberRole", MEMBER_ROLES, **kwargs)


def language(**kwargs) -> Choice:
    """The language a member is written to in."""
    return Choice("Language", LANGUAGES, **kwargs)


class Output(ma.Schema):
    """A response body: every field is always there (null only where a field allows it), so
    the documents mark each one required and a generated client need not guess."""

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        field_obj.required = True


class OfficerSchema(Output):
    member_id = ma.fields.UUID()
    name = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "null only in a projection recorded before it kept names, until "
            "the group next changes"
        },
    )


class OfficersSchema(ma.Schema):
    """A group's officers by role; a vacant role is left out."""

    ketua = ma.fields.Nested(OfficerSchema)
    sekretaris = ma.fields.Nested(OfficerSchema)
    bendahara = ma.fields.Nested(OfficerSchema)
