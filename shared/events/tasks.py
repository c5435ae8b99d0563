"""The Celery tasks every service's worker runs: consume an event, prune the event log."""

from __future__ import annotations

import os
from datetime import timedelta

from celery import shared_task
from sqlalchemy import delete

from shared.db import utcnow
from shared.events.consumer import deliver
from shared.http import kube


def define_event_tasks(service: str) -> tuple:
    """Register `<service>.handle_event` and `<service>.purge_event_log`."""

    @shared_task(name=f"{service}.handle_event", bind=True)
    def handle_event(self, envelope: dict) -> str:
        context = kube()
        return deliver(self, context.consumer, envelope, context.settings)

    @shared_task(name=f"{service}.purge_event_log")
    def purge_event_log() -> dict:
        # The inbox must outlive any redelivery; 30 days is far beyond the visibility timeout.
        days = int(os.environ.get("KUBE_EVENT_RETENTION_DAYS", "30"))
        cutoff = utcnow() - timedelta(days=days)
        models = kube().models
        with kube().db.transaction() as session:
            outbox = session.execute(
                delete(models.OutboxEvent).where(models.OutboxEvent.published_at < cutoff)
            ).rowcount
            inbox = session.execute(
                delete(models.ProcessedEvent).where(models.ProcessedEvent.handled_at < cutoff)
            ).rowcount
            # A client retries within minutes; a day covers any retry worth answering.
            keys = session.execute(
                delete(models.IdempotencyKey).where(
                    models.IdempotencyKey.created_at < utcnow() - timedelta(days=1)
                )
            ).rowcount
        return {"outbox_events": outbox, "processed_events": inbox, "idempotency_keys": keys}

    return handle_event, purge_event_log
