"""What the grant API's resources share: the caller as an actor, and answers as bodies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from services.grants import definitions
from services.grants.applications import Actor, overdue
from services.grants.models import Grant
from shared.auth import current_principal
from shared.errors import DomainError
from shared.problems import problem_body

# Who may try a workflow action: every role but the read-only auditor; the route's table
# says which role takes which action (403 otherwise).
ACTORS = ("pendamping", "verifikator", "kepala_dinas", "bendahara", "admin", "service")
APPLICANTS = ("pendamping", "service")
PROGRAM_MANAGERS = ("kepala_dinas", "admin")
DECREE_SIGNERS = ("kepala_dinas",)
TREASURERS = ("bendahara",)
# Transfer files hold account numbers in full.
PAYMENT_READERS = ("bendahara", "kepala_dinas", "auditor", "admin")


def current_actor() -> Actor:
    principal = current_principal()
    return Actor(principal.sub, principal.roles, principal.scope)


def grant_view(session: Session, grant: Grant, now: datetime) -> dict:
    """An application as the API shows it, with what the caller can do next."""
    body = {c.key: getattr(grant, c.key) for c in inspect(Grant).mapper.column_attrs}
    route = definitions.route(session, grant.workflow_key, grant.workflow_version)
    body["workflow"] = {"key": grant.workflow_key, "version": grant.workflow_version}
    body["next_actions"] = route.workflow.actions_from(grant.stage)
    body["overdue"] = overdue(grant, now)
    return body


def outcome_view(outcome: dict) -> dict:
    """A bulk item's outcome: ok, or the problem a single request would have answered."""
    body = {"grant_id": None, "stage": None, "status": None, "unchanged": None}
    body.update((k, v) for k, v in outcome.items() if k != "error")
    error: DomainError | None = outcome.get("error")
    body["problem"] = problem_body(error) if error is not None else None
    return body
