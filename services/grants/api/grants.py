"""/api/v1/grants: UEP applications, their workflow transitions and their history."""

from __future__ import annotations

import uuid

from flask import url_for
from flask.views import MethodView

from services.grants.api.common import ACTORS, APPLICANTS, current_actor, grant_view
from services.grants.applications import (
    create_grant,
    find_grant,
    history_of,
    list_grants,
    take_action,
    update_draft,
)
from services.grants.inputs import GrantChanges, GrantInput
from services.grants.schemas import (
    AuditRecordSchema,
    GrantQuerySchema,
    GrantSchema,
    TransitionInput,
)
from shared.api import Blueprint
from shared.db import utcnow
from shared.http import commit_with_response, current_context, etag, require_if_match
from shared.pagination import PageArgs, page_of, paginate
from shared.tokens import READERS

blp = Blueprint(
    "grants",
    __name__,
    url_prefix="/api/v1/grants",
    description="UEP grant applications and their approval workflow.",
)


def answer(grant, status: int = 200, **headers):
    session = current_context().db.session
    return grant_view(session, grant, utcnow()), status, {"ETag": etag(grant.version), **headers}


@blp.route("")
class Grants(MethodView):
    @blp.arguments(GrantQuerySchema, location="query")
    @blp.response(200, page_of(GrantSchema))
    @blp.operation("list_grants", roles=READERS)
    def get(self, args):
        """List applications in the caller's region (filters: stage, programme, region, group,
        overdue)."""
        session = current_context().db.session
        now = utcnow()
        statement = list_grants(current_actor().scope, args, now)
        page = paginate(session, statement, args["page"], args["page_size"])
        return {**page, "items": [grant_view(session, g, now) for g in page["items"]]}

    @blp.arguments(GrantInput)
    @blp.response(201, GrantSchema)
    @blp.operation("create_grant", roles=APPLICANTS, problems=[409], etag=True, location=True)
    def post(self, data):
        """Make an application for a group in a programme; it starts as a draft."""
        context = current_context()
        grant = create_grant(context.db.session, context.outbox, data, actor=current_actor())
        commit_with_response()
        return answer(grant, 201, Location=url_for("grants.GrantById", grant_id=grant.id))


@blp.route("/<uuid:grant_id>")
class GrantById(MethodView):
    @blp.response(200, GrantSchema)
    @blp.operation("get_grant", roles=READERS, etag=True)
    def get(self, grant_id: uuid.UUID):
        """Read an application."""
        return answer(find_grant(current_context().db.session, grant_id, current_actor().scope))

    @blp.arguments(GrantChanges)
    @blp.response(200, GrantSchema)
    @blp.operation("update_grant", roles=APPLICANTS, problems=[409], if_match=True, etag=True)
    def patch(self, changes, grant_id: uuid.UUID):
        """Correct a draft (a new one, or one returned for correction); If-Match."""
        session = current_context().db.session
        actor = current_actor()
        grant = find_grant(session, grant_id, actor.scope, lock=True)
        require_if_match(grant.version)
        update_draft(session, grant, changes, actor=actor)
        commit_with_response()
        return answer(grant)


@blp.route("/<uuid:grant_id>/transitions")
class GrantTransitions(MethodView):
    @blp.arguments(TransitionInput)
    @blp.response(200, GrantSchema)
    # The route's table decides who may take which action (403) from which stage (409).
    @blp.operation("transition_grant", roles=ACTORS, problems=[403, 409], if_match=True, etag=True)
    def post(self, body, grant_id: uuid.UUID):
        """Take a workflow action (submit, verify, approve, ...) with its comment and data;
        If-Match with the ETag of your last read."""
        context = current_context()
        session = context.db.session
        actor = current_actor()
        grant = find_grant(session, grant_id, actor.scope, lock=True)
        require_if_match(grant.version)
        take_action(
            session,
            context.outbox,
            grant,
            body["action"],
            actor=actor,
            comment=body["comment"],
            data=body["data"],
        )
        commit_with_response()
        return answer(grant)


@blp.route("/<uuid:grant_id>/history")
class GrantHistory(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(AuditRecordSchema))
    @blp.operation("get_grant_history", roles=READERS)
    def get(self, args, grant_id: uuid.UUID):
        """Every step of the application, oldest first: who, in which role, what, when."""
        session = current_context().db.session
        grant = find_grant(session, grant_id, current_actor().scope)
        return paginate(session, history_of(grant.id), args["page"], args["page_size"])
