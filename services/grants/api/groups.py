"""/api/v1/groups: the groups grants knows of, as the registry announced them."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from sqlalchemy import select

from services.grants.models import GroupProjection
from services.grants.schemas import GroupProjectionSchema, GroupQuerySchema
from shared.api import Blueprint
from shared.auth import current_principal
from shared.http import current_context
from shared.pagination import page_of, paginate
from shared.tokens import READERS

blp = Blueprint(
    "groups",
    __name__,
    url_prefix="/api/v1/groups",
    description="Groups known to the grant service (a projection of the registry).",
)


@blp.route("")
class Groups(MethodView):
    @blp.arguments(GroupQuerySchema, location="query")
    @blp.response(200, page_of(GroupProjectionSchema))
    @blp.operation("list_groups", roles=READERS)
    def get(self, args):
        """List known groups in the caller's region."""
        statement = (
            select(GroupProjection)
            .where(current_principal().scope.where(GroupProjection.region_code))
            .order_by(GroupProjection.name, GroupProjection.id)
        )
        if args.get("status"):
            statement = statement.where(GroupProjection.status == args["status"])
        return paginate(current_context().db.session, statement, args["page"], args["page_size"])


@blp.route("/<uuid:group_id>")
class GroupById(MethodView):
    @blp.response(200, GroupProjectionSchema)
    @blp.operation("get_group", roles=READERS)
    def get(self, group_id: uuid.UUID):
        """Read one known group."""
        return current_principal().scope.one(
            current_context().db.session,
            select(GroupProjection).where(GroupProjection.id == group_id),
            GroupProjection.region_code,
            what="group",
        )
