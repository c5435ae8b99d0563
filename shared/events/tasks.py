"""The Celery tasks every service's worker runs: consume an event, prune the event log."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from sqlalchemy import delete

from shared.db import utcnow
from shared.events.consumer import deliver
from shared.service import PeriodicTask, task_context

# A client retries within minutes; a day covers any retry worth answering.
IDEMPOTENCY_KEY_RETENTION = timedelta(days=1)


def define_event_tasks(service: str) -> tuple:
    """Register `<service>.handle_event` and `<service>.purge_event_log`."""

    @shared_task(name=f"{service}.handle_event", bind=True)
    def handle_event(self, envelope: dict) -> str:
        context = task_context(service)
        return deliver(self, context.consumer, envelope, context.settings)

    @shared_task(name=f"{service}.purge_event_log")
    def purge_event_log() -> dict:
        context = task_context(service)
        tables = context.tables
        # The inbox must outlive any redelivery; 30 days is far beyond the visibility timeout.
        cutoff = utcnow() - timedelta(days=context.settings.event_retention_days)
        with context.db.transaction() as session:
            outbox = session.execute(
                delete(tables.outbox).where(tables.outbox.published_at < cutoff)
            ).rowcount
            inbox = session.execute(
                delete(tables.inbox).where(tables.inbox.handled_at < cutoff)
            ).rowcount
            keys = session.execute(
                delete(tables.idempotency_keys).where(
                    tables.idempotency_keys.created_at < utcnow() - IDEMPOTENCY_KEY_RETENTION
                )
            ).rowcount
        return {"outbox_events": outbox, "processed_events": inbox, "idempotency_keys": keys}

    return handle_event, purge_event_log


def event_log_purge(service: str) -> PeriodicTask:
    """The nightly purge of a service's old event rows, for its `periodic_tasks`."""
    from celery.schedules import crontab

    return PeriodicTask(f"{service}.purge_event_log", crontab(hour=2, minute=15))
