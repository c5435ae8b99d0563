"""A programme's budget: total, reserved, disbursed and available, moved only through the
ledger. Callers hold the programme's row lock (`lock_program`) while they check and move it;
the database's CHECK refuses an overdraft even if one did not."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.grants.models import BudgetMovement, Grant, Program


def lock_program(session: Session, program_id: uuid.UUID) -> Program:
    """The programme, its row locked until the transaction ends (approvals queue on it)."""
    return session.scalars(
        select(Program)
        .where(Program.id == program_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def available(program: Program) -> int:
    return program.total_budget - program.reserved - program.disbursed


def summary(program: Program) -> dict:
    return {
        "program_id": program.id,
        "total": program.total_budget,
        "reserved": program.reserved,
        "disbursed": program.disbursed,
        "available": available(program),
    }


def _move(session: Session, program: Program, grant: Grant, kind: str, amount: int) -> None:
    session.add(BudgetMovement(program_id=program.id, grant_id=grant.id, kind=kind, amount=amount))


def reserve(session: Session, program: Program, grant: Grant) -> None:
    """Approval sets the grant's amount aside."""
    program.reserved += grant.amount
    _move(session, program, grant, "reserve", grant.amount)


def release(session: Session, program: Program, grant: Grant) -> None:
    """A rejected or cancelled approval gives its amount back."""
    program.reserved -= grant.amount
    _move(session, program, grant, "release", grant.amount)


def disburse(session: Session, program: Program, grant: Grant) -> None:
    """The transfer moves the amount from reserved to disbursed."""
    program.reserved -= grant.amount
    program.disbursed += grant.amount
    _move(session, program, grant, "disburse", grant.amount)


def ledger_totals(session: Session, program_id: uuid.UUID) -> dict:
    """Reserved and disbursed as the ledger adds them up (they equal the counters)."""
    sums = dict(
        session.execute(
            select(BudgetMovement.kind, func.sum(BudgetMovement.amount))
            .where(BudgetMovement.program_id == program_id)
            .group_by(BudgetMovement.kind)
        ).all()
    )
    reserve, release, paid = (int(sums.get(k) or 0) for k in ("reserve", "release", "disburse"))
    return {"reserved": reserve - release - paid, "disbursed": paid}
