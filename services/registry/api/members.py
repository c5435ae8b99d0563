"""/api/v1/groups/{id}/members and /api/v1/members: the member households of groups."""

from __future__ import annotations

import uuid

from flask import g, jsonify, url_for
from flask.views import MethodView

from services.registry.api.groups import WRITERS, rules
from services.registry.groups import find_group, members_of
from services.registry.inputs import MemberInput
from services.registry.membership import (
    FULL_IDENTITY_ROLES,
    access_trail,
    add_member,
    find_member,
    masked,
    record_identity_access,
    remove_member,
    update_member,
)
from services.registry.reads import membership_page
from services.registry.schemas import (
    MemberFullSchema,
    MemberLookupQuerySchema,
    MemberPatchSchema,
    MemberSchema,
    MemberSearchSchema,
    MembershipSchema,
    PersonalDataAccessQuerySchema,
    PersonalDataAccessSchema,
)
from shared.api import Blueprint
from shared.auth import current_principal
from shared.http import commit_with_response, current_context, etag, require_if_match
from shared.pagination import PageArgs, page_of, paginate
from shared.tokens import READERS

blp = Blueprint(
    "members",
    __name__,
    url_prefix="/api/v1",
    description="Member households of groups (NIK and No. KK masked unless stated).",
)

LOOKUP_ROLES = ("verifikator", "kepala_dinas", "admin", "auditor", "service")


@blp.route("/groups/<uuid:group_id>/members")
class GroupMembers(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(MemberSchema))
    @blp.operation("list_members", roles=READERS)
    def get(self, args, group_id: uuid.UUID):
        """List the group's current members, in the order they joined (NIK and No. KK masked)."""
        session = current_context().db.session
        group = find_group(session, group_id, current_principal().scope)
        return paginate(session, members_of(group.id), args["page"], args["page_size"])

    @blp.arguments(MemberInput)
    @blp.response(201, MemberSchema)
    @blp.operation("add_member", roles=WRITERS, problems=[409], etag=True, location=True)
    def post(self, data, group_id: uuid.UUID):
        """Add a head of family to the group."""
        principal = current_principal()
        session = current_context().db.session
        group = find_group(session, group_id, principal.scope, lock=True)
        member = add_member(
            session, current_context().outbox, group, data, rules(), scope=principal.scope
        )
        commit_with_response()
        location = url_for("members.GroupMember", group_id=group.id, member_id=member.id)
        return member, 201, {"ETag": etag(member.version), "Location": location}


@blp.route("/groups/<uuid:group_id>/members/<uuid:member_id>")
class GroupMember(MethodView):
    @blp.response(200, MemberFullSchema)
    @blp.operation("get_member", roles=READERS, etag=True)
    def get(self, group_id: uuid.UUID, member_id: uuid.UUID):
        """Read one member; verifikator and admin see full NIK and No. KK (and are logged)."""
        principal = current_principal()
        session = current_context().db.session
        member = find_member(session, find_group(session, group_id, principal.scope), member_id)
        headers = {"ETag": etag(member.version)}
        if not principal.has_role(*FULL_IDENTITY_ROLES):
            return masked(member), 200, headers
        record_identity_access(
            session,
            member,
            user=principal.sub,
            roles=list(principal.roles),
            request_id=g.get("request_id"),
        )
        commit_with_response()
        return member, 200, headers

    @blp.arguments(MemberPatchSchema)
    @blp.response(200, MemberSchema)
    @blp.operation("update_member", roles=WRITERS, problems=[409], if_match=True, etag=True)
    def patch(self, changes, group_id: uuid.UUID, member_id: uuid.UUID):
        """Change a member; send If-Match with the ETag of your last read."""
        principal = current_principal()
        session = current_context().db.session
        group = find_group(session, group_id, principal.scope, lock=True)
        member = find_member(session, group, member_id)
        require_if_match(member.version)
        update_member(
            session, current_context().outbox, group, member, changes, scope=principal.scope
        )
        commit_with_response()
        return member, 200, {"ETag": etag(member.version)}

    @blp.response(200, MemberSchema)
    @blp.operation("remove_member", roles=WRITERS, problems=[409], etag=True)
    def delete(self, group_id: uuid.UUID, member_id: uuid.UUID):
        """Remove a member from the group (the record stays for history)."""
        principal = current_principal()
        session = current_context().db.session
        group = find_group(session, group_id, principal.scope, lock=True)
        member = find_member(session, group, member_id)
        if member.removed_at is None:
            remove_member(session, current_context().outbox, group, member)
            commit_with_response()
        return member, 200, {"ETag": etag(member.version)}


@blp.route("/members")
class MemberLookup(MethodView):
    @blp.arguments(MemberLookupQuerySchema, location="query")
    @blp.response(200, page_of(MembershipSchema))
    @blp.operation("find_memberships", roles=LOOKUP_ROLES)
    def get(self, args):
        """Find a person's groups by NIK (verifiers). Prefer POST /members/search, which keeps
        the NIK out of URLs and so out of proxy logs."""
        return _memberships(args["nik"], args)


@blp.route("/members/search")
class MemberSearch(MethodView):
    @blp.arguments(MemberSearchSchema)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(MembershipSchema))
    @blp.operation("search_memberships", roles=LOOKUP_ROLES)
    def post(self, body, args):
        """Find a person's groups by the NIK in the body, current membership first."""
        return _memberships(body["nik"], args)


def _memberships(nik: str, page: dict):
    with current_context().db.reading() as connection:
        found = membership_page(
            connection, nik, current_principal().scope, page["page"], page["page_size"]
        )
    # Already in the documented shape (services/registry/reads.py): no dump.
    return jsonify(found)


@blp.route("/personal-data-access")
class PersonalDataAccessLog(MethodView):
    @blp.arguments(PersonalDataAccessQuerySchema, location="query")
    @blp.response(200, page_of(PersonalDataAccessSchema))
    @blp.operation("list_personal_data_access", roles=("admin", "auditor"))
    def get(self, args):
        """The trail of who saw full identity numbers (admin, auditor)."""
        principal = current_principal()
        statement = access_trail(principal.scope, args.get("member_id"))
        return paginate(current_context().db.session, statement, args["page"], args["page_size"])
