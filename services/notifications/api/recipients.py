"""/api/v1/recipient-groups: whom notifications can reach, as the registry announced them."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from sqlalchemy import select

from services.notifications.models import RecipientGroup
from services.notifications.schemas import RecipientGroupQuerySchema, RecipientGroupSchema
from shared.api import Blueprint
from shared.auth import current_principal
from shared.http import current_context
from shared.pagination import page_of, paginate
from shared.tokens import READERS

blp = Blueprint(
    "recipient_groups",
    __name__,
    url_prefix="/api/v1/recipient-groups",
    description="Groups and their members' contacts (a projection of the registry).",
)


@blp.route("")
class RecipientGroups(MethodView):
    @blp.arguments(RecipientGroupQuerySchema, location="query")
    @blp.response(200, page_of(RecipientGroupSchema))
    @blp.operation("list_recipient_groups", roles=READERS)
    def get(self, args):
        """List recipient groups in the caller's region."""
        statement = (
            select(RecipientGroup)
            .where(current_principal().scope.where(RecipientGroup.region_code))
            .order_by(RecipientGroup.name, RecipientGroup.id)
        )
        return paginate(current_context().db.session, statement, args["page"], args["page_size"])


@blp.route("/<uuid:group_id>")
class RecipientGroupById(MethodView):
    @blp.response(200, RecipientGroupSchema)
    @blp.operation("get_recipient_group", roles=READERS)
    def get(self, group_id: uuid.UUID):
        """Read one group's contacts."""
        return current_principal().scope.one(
            current_context().db.session,
            select(RecipientGroup).where(RecipientGroup.id == group_id),
            RecipientGroup.region_code,
            what="group",
        )
