"""The notifications service as the platform sees it: tables, migrations, subscriptions, tasks."""

from __future__ import annotations

from pathlib import Path

from services.notifications import handlers, models
from shared.events.tasks import define_event_tasks, event_catch_up, event_log_purge
from shared.service import Service

NAME = "notifications"

SERVICE = Service(
    name=NAME,
    default_port=5003,
    metadata=models.Base.metadata,
    tables=models.EVENT_TABLES,
    migrations=Path(__file__).parent / "migrations",
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
    periodic_tasks=(event_log_purge(NAME), event_catch_up(NAME)),
)

define_event_tasks(NAME)
