"""/api/v1/workflows: the approval routes, each version as data and as a table."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import select

from services.grants import definitions
from services.grants.api.common import current_actor
from services.grants.definitions import DefinitionShape
from services.grants.models import WorkflowDefinition
from services.grants.schemas import WorkflowSchema
from shared.api import Blueprint
from shared.http import commit_with_response, current_context
from shared.tokens import READERS

blp = Blueprint(
    "workflows",
    __name__,
    url_prefix="/api/v1/workflows",
    description="Approval routes: which role takes which action from which stage, with "
    "which checks. Versioned: an application keeps the version it started with.",
)


def workflow_view(route: definitions.Route, latest: int) -> dict:
    return {
        "key": route.key,
        "version": route.version,
        "title": route.title,
        "latest": route.version == latest,
        "table": route.table(),
        "definition": route.definition,
    }


@blp.route("")
class Workflows(MethodView):
    @blp.response(200, WorkflowSchema(many=True))
    @blp.operation("list_workflows", roles=READERS)
    def get(self):
        """Every version of every route, each printed as a table."""
        session = current_context().db.session
        stored = session.execute(
            select(WorkflowDefinition.key, WorkflowDefinition.version).order_by(
                WorkflowDefinition.key, WorkflowDefinition.version
            )
        ).all()
        latest: dict[str, int] = {}
        for key, version in stored:
            latest[key] = max(version, latest.get(key, 0))
        return [
            workflow_view(definitions.route(session, key, version), latest[key])
            for key, version in stored
        ]


@blp.route("/<string:key>")
class WorkflowVersions(MethodView):
    @blp.arguments(DefinitionShape)
    @blp.response(201, WorkflowSchema)
    @blp.operation(
        "add_workflow_version",
        roles=("admin",),
        nationwide="A workflow version is every region's",
    )
    def post(self, _loaded, key: str):
        """Store a new version of a route; new applications take it, running ones keep
        theirs."""
        from flask import request

        session = current_context().db.session
        route = definitions.add_version(session, key, request.get_json(), actor=current_actor().sub)
        commit_with_response()
        return workflow_view(route, route.version), 201
