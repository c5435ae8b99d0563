"""The notifications service as the platform sees it: tables, migrations, subscriptions, tasks."""

from __future__ import annotations

from pathlib import Path

from services.notifications import demo, handlers, models
from services.notifications.tasks import DISPATCH_DUE, RECOVER_INTERRUPTED
from shared.events.tasks import define_event_tasks, event_catch_up, event_log_purge
from shared.service import PeriodicTask, Service

NAME = "notifications"

SERVICE = Service(
    name=NAME,
    default_port=5003,
    metadata=models.Base.metadata,
    tables=models.EVENT_TABLES,
    migrations=Path(__file__).parent / "migrations",
    publishes=("notification.sent", "notification.failed"),
    subscribes_to=(
        "group.registered",
        "group.updated",
        "group.status_changed",
        "member.added",
        "member.updated",
        "member.removed",
        "grant.stage_changed",
        "grant.disbursed",
        "grant.report_due",
        "grant.deadline_passed",
    ),
    handlers=handlers.HANDLERS,
    # Group events come from the registry, grant events from grants; their feeds fill in
    # what the broker loses.
    event_sources=("registry", "grants"),
    periodic_tasks=(
        event_log_purge(NAME),
        event_catch_up(NAME),
        # Messages due after quiet hours or a backoff, and any whose first send was lost.
        PeriodicTask(DISPATCH_DUE, 10.0, expires=9),
        PeriodicTask(RECOVER_INTERRUPTED, 60.0, expires=55),
    ),
    seed_demo=demo.seed,
)

define_event_tasks(NAME)
