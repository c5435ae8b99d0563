"""/api/v1/programs: UEP programmes and their budgets."""

from __future__ import annotations

import uuid

from flask import url_for
from flask.views import MethodView

from services.grants.api.common import PROGRAM_MANAGERS
from services.grants.budget import summary
from services.grants.inputs import ProgramChanges, ProgramInput
from services.grants.programs import create_program, find_program, list_programs, update_program
from services.grants.schemas import BudgetSchema, ProgramQuerySchema, ProgramSchema
from shared.api import Blueprint
from shared.auth import current_principal
from shared.http import commit_with_response, current_context, etag, require_if_match
from shared.pagination import page_of, paginate
from shared.tokens import READERS

blp = Blueprint(
    "programs",
    __name__,
    url_prefix="/api/v1/programs",
    description="UEP programmes: budget, amount rule, member limits and approval route.",
)


@blp.route("")
class Programs(MethodView):
    @blp.arguments(ProgramQuerySchema, location="query")
    @blp.response(200, page_of(ProgramSchema))
    @blp.operation("list_programs", roles=READERS)
    def get(self, args):
        """List the programmes the caller's region takes part in."""
        statement = list_programs(current_principal().scope, args)
        return paginate(current_context().db.session, statement, args["page"], args["page_size"])

    @blp.arguments(ProgramInput)
    @blp.response(201, ProgramSchema)
    @blp.operation("create_program", roles=PROGRAM_MANAGERS, etag=True, location=True)
    def post(self, data):
        """Create a programme (APBN: nationwide admins; APBD: the office of its region)."""
        principal = current_principal()
        program = create_program(
            current_context().db.session, data, scope=principal.scope, actor=principal.sub
        )
        commit_with_response()
        return (
            program,
            201,
            {
                "ETag": etag(program.version),
                "Location": url_for("programs.ProgramById", program_id=program.id),
            },
        )


@blp.route("/<uuid:program_id>")
class ProgramById(MethodView):
    @blp.response(200, ProgramSchema)
    @blp.operation("get_program", roles=READERS, etag=True)
    def get(self, program_id: uuid.UUID):
        """Read a programme."""
        program = find_program(current_context().db.session, program_id, current_principal().scope)
        return program, 200, {"ETag": etag(program.version)}

    @blp.arguments(ProgramChanges)
    @blp.response(200, ProgramSchema)
    @blp.operation(
        "update_program", roles=PROGRAM_MANAGERS, problems=[409], if_match=True, etag=True
    )
    def patch(self, changes, program_id: uuid.UUID):
        """Change a programme's name, budget, status or report period (If-Match)."""
        session = current_context().db.session
        scope = current_principal().scope
        program = find_program(session, program_id, scope, lock=True)
        require_if_match(program.version)
        update_program(program, changes, scope=scope)
        commit_with_response()
        return program, 200, {"ETag": etag(program.version)}


@blp.route("/<uuid:program_id>/budget")
class ProgramBudget(MethodView):
    @blp.response(200, BudgetSchema)
    @blp.operation("get_program_budget", roles=READERS)
    def get(self, program_id: uuid.UUID):
        """The programme's budget: total, reserved (approved), disbursed and available."""
        program = find_program(current_context().db.session, program_id, current_principal().scope)
        return summary(program)
