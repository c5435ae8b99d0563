"""Approval routes as data: versioned definitions stored in `workflow_definitions`, each read
into a `Route` on the shared workflow engine. A stored version never changes; an application
keeps the version it started with, and a new version applies to new applications only."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import marshmallow as ma
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.grants.guards import EFFECTS, GUARDS
from services.grants.inputs import ACTION_DATA
from services.grants.models import FINAL_STAGES, WorkflowDefinition
from shared.errors import InvalidInput, NotFound
from shared.events.contracts import GRANT_STAGES
from shared.tokens import ROLES
from shared.validation import Schema, flatten_messages
from shared.workflow import Guard, Transition, Workflow

# The definitions the platform ships; migrations store them (and never change a stored one).
SHIPPED = Path(__file__).parent / "workflows"
KEY_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
STAGE_PATTERN = r"^[a-z][a-z_]{1,19}$"


@dataclass(frozen=True)
class Deadline:
    """How long a stage may take: working days, or the programme's report period."""

    responsible_role: str
    working_days: int | None = None
    report_due: bool = False


@dataclass(frozen=True)
class Route:
    """One version of an approval route, ready to run."""

    key: str
    version: int
    title: str
    initial: str
    workflow: Workflow
    create_roles: frozenset[str]
    create_guards: tuple[Guard, ...]
    documents: tuple[str, ...]
    deadlines: dict[str, Deadline]
    comment_required: frozenset[tuple[str, str]]
    definition: dict

    def table(self) -> str:
        """The route as a Markdown table: who takes which action from where, and its checks."""
        lines = [
            "| from | action | to | roles | guards | due |",
            "|---|---|---|---|---|---|",
        ]
        for t in self.workflow.transitions:
            guards = ", ".join(f"`{g.name}`" for g in t.guards) or "none"
            roles = ", ".join(sorted(t.roles))
            due = self.deadlines.get(t.target)
            when = ""
            if due and due.working_days:
                when = f"{due.working_days} working days"
            elif due and due.report_due:
                when = "report period"
            lines.append(
                f"| {t.source} | `{t.action}` | {t.target} | {roles} | {guards} | {when} |"
            )
        return "\n".join(lines)


class _TransitionShape(Schema):
    from_ = ma.fields.String(
        data_key="from", required=True, validate=ma.validate.Regexp(STAGE_PATTERN)
    )
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(sorted(ACTION_DATA)))
    to = ma.fields.String(required=True, validate=ma.validate.Regexp(STAGE_PATTERN))
    roles = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(ROLES)),
        required=True,
        validate=ma.validate.Length(min=1),
    )
    guards = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(sorted(GUARDS))), load_default=list
    )
    effects = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(sorted(EFFECTS))), load_default=list
    )
    comment_required = ma.fields.Boolean(load_default=False)
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))


class _CreateShape(Schema):
    roles = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(ROLES)),
        required=True,
        validate=ma.validate.Length(min=1),
    )
    guards = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(sorted(GUARDS))), load_default=list
    )


class _DeadlineShape(Schema):
    working_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=365))
    report_due = ma.fields.Boolean(load_default=False)
    responsible_role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))


class DefinitionShape(Schema):
    """A workflow definition as stored and as an admin sends a new version."""

    title = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=200))
    initial = ma.fields.String(load_default="draft", validate=ma.validate.Regexp(STAGE_PATTERN))
    create = ma.fields.Nested(_CreateShape, required=True)
    documents = ma.fields.List(
        ma.fields.String(validate=ma.validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$")),
        required=True,
    )
    deadlines = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Regexp(STAGE_PATTERN)),
        values=ma.fields.Nested(_DeadlineShape),
        load_default=dict,
    )
    transitions = ma.fields.List(
        ma.fields.Nested(_TransitionShape), required=True, validate=ma.validate.Length(min=1)
    )


def _problems_of(definition: dict) -> list[dict]:
    """What makes a well-formed definition unusable, each named by its field."""
    problems = []
    seen: set[tuple[str, str]] = set()
    states = {definition["initial"]}
    for i, t in enumerate(definition["transitions"]):
        key = (t["from_"], t["action"])
        if key in seen:
            problems.append(
                {
                    "field": f"transitions.{i}",
                    "message": f"A second {t['action']} from {t['from_']}.",
                }
            )
        seen.add(key)
        states.update((t["from_"], t["to"]))
        if t["from_"] in FINAL_STAGES:
            problems.append(
                {"field": f"transitions.{i}.from", "message": f"{t['from_']} is a final stage."}
            )
    reachable, frontier = {definition["initial"]}, [definition["initial"]]
    while frontier:
        state = frontier.pop()
        for t in definition["transitions"]:
            if t["from_"] == state and t["to"] not in reachable:
                reachable.add(t["to"])
                frontier.append(t["to"])
    for stage in sorted(states - set(GRANT_STAGES)):
        # Other services and the API know a closed list of stages (the events' contract).
        problems.append(
            {
                "field": "transitions",
                "message": f"{stage} is not a stage: {', '.join(GRANT_STAGES)}.",
            }
        )
    for i, t in enumerate(definition["transitions"]):
        if t["from_"] not in reachable:
            problems.append(
                {
                    "field": f"transitions.{i}.from",
                    "message": f"{t['from_']} cannot be reached from {definition['initial']}.",
                }
            )
    for stage, due in definition["deadlines"].items():
        if stage not in states:
            problems.append({"field": f"deadlines.{stage}", "message": "No such stage."})
        if not due.get("working_days") and not due.get("report_due"):
            problems.append(
                {"field": f"deadlines.{stage}", "message": "Give working_days or report_due."}
            )
    return problems


def validate_definition(raw: dict) -> dict:
    """A definition checked for shape and sense; InvalidInput naming every problem."""
    try:
        loaded = DefinitionShape().load(raw)
    except ma.ValidationError as exc:
        raise InvalidInput(
            "The workflow definition is not valid.", errors=flatten_messages(exc.messages)
        ) from None
    problems = _problems_of(loaded)
    if problems:
        raise InvalidInput("The workflow definition is not valid.", errors=problems)
    return raw


def route_of(key: str, version: int, definition: dict) -> Route:
    """Read a stored definition into a Route."""
    transitions = [
        Transition(
            source=t["from"],
            action=t["action"],
            target=t["to"],
            roles=frozenset(t["roles"]),
            guards=tuple(GUARDS[g] for g in t.get("guards", ())),
            effects=tuple(EFFECTS[e] for e in t.get("effects", ())),
            description=t.get("description", ""),
        )
        for t in definition["transitions"]
    ]
    return Route(
        key=key,
        version=version,
        title=definition["title"],
        initial=definition.get("initial", "draft"),
        workflow=Workflow(f"{key} v{version}", transitions, state_attribute="stage"),
        create_roles=frozenset(definition["create"]["roles"]),
        create_guards=tuple(GUARDS[g] for g in definition["create"].get("guards", ())),
        documents=tuple(definition["documents"]),
        deadlines={
            stage: Deadline(
                responsible_role=d["responsible_role"],
                working_days=d.get("working_days"),
                report_due=d.get("report_due", False),
            )
            for stage, d in definition.get("deadlines", {}).items()
        },
        comment_required=frozenset(
            (t["from"], t["action"]) for t in definition["transitions"] if t.get("comment_required")
        ),
        definition=definition,
    )


# Stored versions never change, so each is read once per process.
_routes: dict[tuple[str, int], Route] = {}


def route(session: Session, key: str, version: int) -> Route:
    """A stored version of a route."""
    found = _routes.get((key, version))
    if found is None:
        stored = session.get(WorkflowDefinition, (key, version))
        if stored is None:
            raise NotFound(f"No workflow {key} version {version}.")
        found = _routes[(key, version)] = route_of(key, version, stored.definition)
    return found


def latest_version(session: Session, key: str) -> int | None:
    return session.scalar(
        select(func.max(WorkflowDefinition.version)).where(WorkflowDefinition.key == key)
    )


def latest(session: Session, key: str) -> Route:
    """The newest version of a route: the one new applications start on."""
    version = latest_version(session, key)
    if version is None:
        raise NotFound(f"No workflow named {key}.")
    return route(session, key, version)


def add_version(session: Session, key: str, raw: dict, *, actor: str) -> Route:
    """Store a new version of a route (new applications take it; running ones keep theirs)."""
    if not re.fullmatch(KEY_PATTERN, key):
        raise InvalidInput.field("key", "Must be 2 to 40 lower-case letters, digits or _.")
    definition = validate_definition(raw)
    # Serialised per key, so two admins cannot both store version n+1.
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"workflow:{key}"))))
    version = (latest_version(session, key) or 0) + 1
    stored = {**definition, "key": key, "version": version}
    session.add(WorkflowDefinition(key=key, version=version, definition=stored, created_by=actor))
    session.flush()
    return route(session, key, version)


def shipped_definitions() -> list[dict]:
    """The definitions in the repository, as the migrations store them."""
    return [json.loads(path.read_text()) for path in sorted(SHIPPED.glob("*.json"))]


def shipped_routes() -> tuple[Workflow, ...]:
    """The shipped routes' workflows, for `kube workflows`."""
    return tuple(route_of(d["key"], d["version"], d).workflow for d in shipped_definitions())


def require_known(session: Session, key: str) -> None:
    if latest_version(session, key) is None:
        raise InvalidInput.field("workflow", f"No workflow named {key}.")
