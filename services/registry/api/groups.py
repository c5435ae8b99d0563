"""/api/v1/groups: the office's book of KUBE groups."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from services.registry.groups import register_group
from services.registry.models import Group
from services.registry.schemas import GroupCreateSchema, GroupQuerySchema, GroupSchema
from shared.auth import current_principal, require_roles
from shared.errors import NotFound
from shared.http import kube
from shared.pagination import page_of, paginate

blp = Blueprint("groups", __name__, url_prefix="/api/v1/groups", description="KUBE groups")

WRITERS = ("pendamping", "verifikator", "admin", "service")


@blp.route("")
class Groups(MethodView):
    @blp.arguments(GroupQuerySchema, location="query")
    @blp.response(200, page_of(GroupSchema))
    def get(self, args):
        """List the groups in the caller's region."""
        principal = current_principal()
        statement = select(Group).order_by(Group.created_at.desc(), Group.id)
        if principal.region:
            statement = statement.where(Group.region_code.startswith(principal.region))
        if args["region"]:
            statement = statement.where(Group.region_code.startswith(args["region"]))
        return paginate(kube().db.session, statement, args["page"], args["page_size"])

    @blp.arguments(GroupCreateSchema)
    @blp.response(201, GroupSchema)
    def post(self, data):
        """Register a group (in draft until its members are complete)."""
        principal = require_roles(*WRITERS)
        if not principal.covers(data["region_code"]):
            from shared.errors import Forbidden

            raise Forbidden("The group's village lies outside your region.")
        session = kube().db.session
        group = register_group(session, kube().outbox, data)
        session.commit()
        return group


@blp.route("/<uuid:group_id>")
class GroupById(MethodView):
    @blp.response(200, GroupSchema)
    def get(self, group_id: uuid.UUID):
        """Read one group."""
        group = kube().db.session.get(Group, group_id)
        if group is None or not current_principal().covers(group.region_code):
            raise NotFound("No group with this id in your region.")
        return group
