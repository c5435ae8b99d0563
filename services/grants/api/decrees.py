"""/api/v1/decrees: decrees (SK penetapan) approving many applications at once."""

from __future__ import annotations

import uuid

from flask import url_for
from flask.views import MethodView
from sqlalchemy import select

from services.grants.api.common import DECREE_SIGNERS, current_actor, outcome_view
from services.grants.decrees import ItemsFailed, find_decree, issue_decree
from services.grants.models import Decree
from services.grants.schemas import DecreeInput, DecreeOutcomeSchema, DecreeSchema
from shared.api import Blueprint
from shared.errors import Conflict
from shared.http import commit_with_response, current_context
from shared.pagination import PageArgs, page_of, paginate
from shared.tokens import READERS

blp = Blueprint(
    "decrees",
    __name__,
    url_prefix="/api/v1/decrees",
    description="Decrees approving verified (or recommended) applications in bulk.",
)


@blp.route("")
class Decrees(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(DecreeSchema))
    @blp.operation("list_decrees", roles=READERS)
    def get(self, args):
        """List the decrees of the caller's office and the offices inside its region."""
        statement = (
            select(Decree)
            .where(current_actor().scope.where(Decree.region_code))
            .order_by(Decree.created_at.desc(), Decree.id)
        )
        return paginate(current_context().db.session, statement, args["page"], args["page_size"])

    @blp.arguments(DecreeInput)
    @blp.response(200, DecreeOutcomeSchema)
    @blp.operation("issue_decree", roles=DECREE_SIGNERS, problems=[409], location=True)
    def post(self, data):
        """Approve the listed applications under one decree: each that passes its guards is
        approved and its amount reserved; each that fails is reported with its problem. With
        `atomic`, any failure is a 409 and nothing is approved."""
        context = current_context()
        try:
            decree, outcomes = issue_decree(
                context.db.session, context.outbox, data, actor=current_actor()
            )
        except ItemsFailed as exc:
            raise Conflict(exc.detail, items=[outcome_view(o) for o in exc.outcomes]) from None
        commit_with_response()
        body = {"decree": decree, "items": [outcome_view(o) for o in outcomes]}
        return body, 200, {"Location": url_for("decrees.DecreeById", decree_id=decree.id)}


@blp.route("/<uuid:decree_id>")
class DecreeById(MethodView):
    @blp.response(200, DecreeSchema)
    @blp.operation("get_decree", roles=READERS)
    def get(self, decree_id: uuid.UUID):
        """Read a decree (its applications: `GET /grants?...`, each names its decree)."""
        return find_decree(current_context().db.session, decree_id, current_actor())
