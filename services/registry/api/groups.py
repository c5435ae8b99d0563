"""/api/v1/groups: the office's book of KUBE groups, their status and mentoring visits."""

from __future__ import annotations

import uuid

from flask import jsonify, url_for
from flask.views import MethodView

from services.registry.groups import (
    GROUP_WORKFLOW,
    Rules,
    change_status,
    find_group,
    register_group,
    update_group,
)
from services.registry.inputs import GroupInput
from services.registry.mentoring import record_visit, visits_of
from services.registry.models import Group
from services.registry.reads import group_detail, group_page
from services.registry.schemas import (
    GroupDetailSchema,
    GroupPatchSchema,
    GroupQuerySchema,
    GroupSchema,
    GroupStatusChangeSchema,
    VisitSchema,
    VisitWriteSchema,
)
from shared.api import Blueprint
from shared.auth import current_principal
from shared.errors import NotFound
from shared.http import commit_with_response, current_context, etag, require_if_match
from shared.pagination import PageArgs, page_of, paginate
from shared.tokens import READERS

blp = Blueprint("groups", __name__, url_prefix="/api/v1/groups", description="KUBE groups")

WRITERS = ("pendamping", "verifikator", "admin", "service")
MENTORS = ("pendamping", "admin")
# Who may try a status action; the workflow table says which action each role may take.
STATUS_ACTORS = tuple(sorted({r for t in GROUP_WORKFLOW.transitions for r in t.roles}))


def rules() -> Rules:
    return Rules.from_settings(current_context().settings)


def detail(group: Group):
    """The group (changed by this request, not yet committed) as `GroupDetailSchema` shows
    it, and its ETag."""
    body = group_detail(current_context().db.session, group.id, current_principal().scope)
    return _answer(body, 200, {"ETag": etag(group.version)})


def _answer(body: dict, status: int, headers: dict):
    # The body is already in the documented shape (services/registry/reads.py): no dump.
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


@blp.route("")
class Groups(MethodView):
    @blp.arguments(GroupQuerySchema, location="query")
    @blp.response(200, page_of(GroupSchema))
    @blp.operation("list_groups", roles=READERS)
    def get(self, args):
        """List the groups in the caller's region (filters: region, status, business_type, q)."""
        with current_context().db.reading(prepared=False) as connection:
            page = group_page(connection, current_principal().scope, args)
        return _answer(page, 200, {})

    @blp.arguments(GroupInput)
    @blp.response(201, GroupDetailSchema)
    @blp.operation("create_group", roles=WRITERS, etag=True, location=True)
    def post(self, data):
        """Register a group; it stays in draft until its members are complete."""
        principal = current_principal()
        session = current_context().db.session
        group = register_group(
            session, current_context().outbox, data, scope=principal.scope, actor=principal.sub
        )
        commit_with_response()
        body = group_detail(session, group.id, principal.scope)
        location = url_for("groups.GroupById", group_id=group.id)
        return _answer(body, 201, {"ETag": etag(group.version), "Location": location})


@blp.route("/<uuid:group_id>")
class GroupById(MethodView):
    @blp.response(200, GroupDetailSchema)
    @blp.operation("get_group", roles=READERS, etag=True)
    def get(self, group_id: uuid.UUID):
        """Read a group with its officers, last visit and revenue trend."""
        with current_context().db.reading() as connection:
            body = group_detail(connection, group_id, current_principal().scope)
        if body is None:
            raise NotFound("No group with this id in your region.")
        return _answer(body, 200, {"ETag": etag(body["version"])})

    @blp.arguments(GroupPatchSchema)
    @blp.response(200, GroupDetailSchema)
    @blp.operation("update_group", roles=WRITERS, problems=[409], if_match=True, etag=True)
    def patch(self, changes, group_id: uuid.UUID):
        """Change a group's details; send If-Match with the ETag of your last read."""
        principal = current_principal()
        session = current_context().db.session
        group = find_group(session, group_id, principal.scope, lock=True)
        require_if_match(group.version)
        update_group(session, current_context().outbox, group, changes, scope=principal.scope)
        commit_with_response()
        return detail(group)


@blp.route("/<uuid:group_id>/status")
class GroupStatus(MethodView):
    @blp.arguments(GroupStatusChangeSchema)
    @blp.response(200, GroupDetailSchema)
    # The workflow decides who may take which action (403) from which status (409).
    @blp.operation("change_group_status", roles=STATUS_ACTORS, problems=[403, 409], etag=True)
    def post(self, data, group_id: uuid.UUID):
        """Activate, suspend or dissolve a group, with a reason."""
        principal = current_principal()
        session = current_context().db.session
        group = find_group(session, group_id, principal.scope, lock=True)
        change_status(
            session,
            current_context().outbox,
            group,
            data["action"],
            data["reason"],
            rules(),
            roles=principal.roles,
        )
        commit_with_response()
        return detail(group)


@blp.route("/<uuid:group_id>/visits")
class GroupVisits(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(VisitSchema))
    @blp.operation("list_visits", roles=READERS)
    def get(self, args, group_id: uuid.UUID):
        """List a group's mentoring visits, newest first."""
        session = current_context().db.session
        group = find_group(session, group_id, current_principal().scope)
        return paginate(session, visits_of(group.id), args["page"], args["page_size"])

    @blp.arguments(VisitWriteSchema)
    @blp.response(201, VisitSchema)
    @blp.operation("record_visit", roles=MENTORS, problems=[409])
    def post(self, data, group_id: uuid.UUID):
        """Record a mentoring visit (pendamping)."""
        principal = current_principal()
        session = current_context().db.session
        group = find_group(session, group_id, principal.scope)
        visit = record_visit(session, group, data, pendamping=principal.sub)
        commit_with_response()
        return visit
