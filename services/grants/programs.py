"""UEP programmes: who sees which, creating and changing them, and their budget."""

from __future__ import annotations

import uuid

from sqlalchemy import Select, literal, or_, select
from sqlalchemy.orm import Session

from services.grants import definitions
from services.grants.guards import rp
from services.grants.inputs import DEFAULT_WORKFLOW
from services.grants.models import Program
from shared.errors import Conflict, InvalidInput, NotFound, NotPermitted
from shared.scope import RegionScope


def visible_programs(scope: RegionScope) -> Select:
    """Programmes the caller's region takes part in: national ones, those of a region that
    contains the caller's, and those inside the caller's region."""
    statement = select(Program)
    if scope.nationwide:
        return statement
    return statement.where(
        or_(
            Program.region_code.is_(None),
            literal(scope.prefix).startswith(Program.region_code),
            Program.region_code.startswith(scope.prefix, autoescape=True),
        )
    )


def list_programs(scope: RegionScope, filters: dict) -> Select:
    statement = visible_programs(scope).order_by(
        Program.fiscal_year.desc(), Program.name, Program.id
    )
    for key in ("fiscal_year", "funding_source", "status"):
        if filters.get(key) is not None:
            statement = statement.where(getattr(Program, key) == filters[key])
    return statement


def find_program(
    session: Session, program_id: uuid.UUID, scope: RegionScope, *, lock: bool = False
) -> Program:
    statement = visible_programs(scope).where(Program.id == program_id)
    if lock:
        statement = statement.with_for_update(of=Program)
    found = session.scalar(statement)
    if found is None:
        raise NotFound("No programme with this id in your region.")
    return found


def _require_manages(scope: RegionScope, region_code: str | None) -> None:
    """A programme is created or changed only by an office whose region contains it."""
    if region_code is None:
        if not scope.nationwide:
            raise InvalidInput.field(
                "region_code", "A national (APBN) programme is managed nationwide only."
            )
        return
    scope.require(region_code, field="region_code")


def create_program(session: Session, data: dict, *, scope: RegionScope, actor: str) -> Program:
    """A new programme with its whole budget available."""
    _require_manages(scope, data.get("region_code"))
    workflow = data.pop("workflow", None) or DEFAULT_WORKFLOW[data["funding_source"]]
    definitions.require_known(session, workflow)
    program = Program(
        id=uuid.uuid4(),
        workflow_key=workflow,
        reserved=0,
        disbursed=0,
        version=1,
        created_by=actor,
        **data,
    )
    session.add(program)
    session.flush()
    return program


def update_program(program: Program, changes: dict, *, scope: RegionScope) -> Program:
    """Change a programme's name, budget, status or report period; the caller found it with
    its row locked (`find_program(..., lock=True)`)."""
    if not (scope.nationwide or (program.region_code or "").startswith(scope.prefix)):
        raise NotPermitted("Only an office whose region contains the programme may change it.")
    total = changes.get("total_budget")
    if total is not None and total < program.reserved + program.disbursed:
        raise Conflict(
            "The budget cannot fall below what is already reserved and disbursed "
            f"({rp(program.reserved + program.disbursed)}).",
            errors=[{"field": "total_budget", "message": "below the amount already committed"}],
        )
    for key, value in changes.items():
        setattr(program, key, value)
    program.version += 1
    return program
