"""The grants service as the platform sees it: tables, migrations, subscriptions, tasks and
demo data."""

from __future__ import annotations

from pathlib import Path

from services.grants import demo, handlers, models
from services.grants.cli import grants
from services.grants.definitions import shipped_routes
from services.grants.tasks import ANNOUNCE_DEADLINES
from shared.events.tasks import define_event_tasks, event_catch_up, event_log_purge
from shared.service import PeriodicTask, Service

NAME = "grants"

SERVICE = Service(
    name=NAME,
    default_port=5002,
    metadata=models.Base.metadata,
    tables=models.EVENT_TABLES,
    migrations=Path(__file__).parent / "migrations",
    publishes=(
        "grant.created",
        "grant.stage_changed",
        "grant.disbursed",
        "grant.deadline_passed",
        "grant.report_due",
        "decree.issued",
    ),
    subscribes_to=(
        "group.registered",
        "group.updated",
        "group.status_changed",
        "member.added",
        "member.updated",
        "member.removed",
    ),
    handlers=handlers.HANDLERS,
    # Group events come from the registry; its feed fills in what the broker loses.
    event_sources=("registry",),
    periodic_tasks=(
        event_log_purge(NAME),
        event_catch_up(NAME),
        # Each missed deadline is announced once (the table's key), so runs may overlap.
        PeriodicTask(ANNOUNCE_DEADLINES, 300.0, expires=290),
    ),
    commands=(grants,),
    workflows=shipped_routes(),
    seed_demo=demo.seed,
)

define_event_tasks(NAME)
