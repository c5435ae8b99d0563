"""The registry as the platform sees it: tables, migrations, tasks, commands and demo data."""

from __future__ import annotations

from pathlib import Path

from celery.schedules import crontab

from services.registry import demo, handlers, models
from services.registry.cli import keys, regions
from services.registry.groups import GROUP_WORKFLOW
from services.registry.tasks import PURGE_IMPORT_FILES, REQUEUE_STALLED_IMPORTS
from shared.events.tasks import define_event_tasks, event_catch_up, event_log_purge
from shared.service import PeriodicTask, Service

NAME = "registry"

SERVICE = Service(
    name=NAME,
    default_port=5001,
    metadata=models.Base.metadata,
    tables=models.EVENT_TABLES,
    migrations=Path(__file__).parent / "migrations",
    # The registry is the source of group and member events.
    publishes=(
        "group.registered",
        "group.updated",
        "group.status_changed",
        "member.added",
        "member.updated",
        "member.removed",
    ),
    # It learns when a group's grant was paid, for the revenue report (services/registry/
    # reports.py); the grant service's feed fills in what the broker loses.
    subscribes_to=("grant.disbursed",),
    handlers=handlers.HANDLERS,
    event_sources=("grants",),
    periodic_tasks=(
        event_log_purge(NAME),
        event_catch_up(NAME),
        # The API's send of a new import fails while Redis is down; this sends it again.
        # Expires before the next one, so runs missed while the worker is busy do not pile up.
        PeriodicTask(REQUEUE_STALLED_IMPORTS, 60.0, expires=55),
        # Raw files hold every row's full NIK and No. KK: kept only while they may be needed.
        PeriodicTask(PURGE_IMPORT_FILES, crontab(hour=3, minute=0)),
    ),
    commands=(regions, keys),
    # NIK, No. KK and uploaded files are encrypted at rest (services/registry/models.py).
    encrypts_personal_data=True,
    workflows=(GROUP_WORKFLOW,),
    seed_demo=demo.seed,
)

define_event_tasks(NAME)
