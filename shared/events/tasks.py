"""The Celery tasks every service's worker runs: consume an event, catch up on the feeds of
its producers, prune the event log."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from sqlalchemy import delete

from shared.config import catch_up_every_seconds, service_url
from shared.db import utcnow
from shared.events.consumer import deliver
from shared.events.feed import catch_up, record_catch_up_error
from shared.service import PeriodicTask, task_context
from shared.tokens import NATIONWIDE, issue_token

log = logging.getLogger(__name__)

# A client retries within minutes; a day covers any retry worth answering.
IDEMPOTENCY_KEY_RETENTION = timedelta(days=1)


def define_event_tasks(service: str) -> tuple:
    """Register `<service>.handle_event`, `.catch_up_events` and `.purge_event_log`."""

    # max_retries=None: Celery never gives up on its own; `deliver` counts the attempts
    # against KUBE_TASK_MAX_RETRIES and ends in a dead letter.
    @shared_task(name=f"{service}.handle_event", bind=True, max_retries=None)
    def handle_event(self, envelope: dict) -> str:
        context = task_context(service)
        return deliver(self, context.consumer, envelope, context.settings)

    @shared_task(name=f"{service}.catch_up_events")
    def catch_up_events() -> dict:
        context = task_context(service)
        grace = timedelta(seconds=context.settings.catch_up_grace_seconds)
        outcome = {}
        for producer in context.service.event_sources:
            base_url = service_url(producer)
            if not base_url:
                log.error("no URL for the event feed", extra={"producer": producer})
                continue
            try:
                result = catch_up(context, producer, base_url, _feed_token(context), grace=grace)
            except Exception as exc:
                log.warning(
                    "catch-up failed; next pass retries",
                    extra={"producer": producer, "error": f"{type(exc).__name__}: {exc}"},
                )
                record_catch_up_error(context, producer, exc)
                continue
            outcome[producer] = {"unsettled": result.unsettled, "resent": result.resent}
        return outcome

    @shared_task(name=f"{service}.purge_event_log")
    def purge_event_log() -> dict:
        context = task_context(service)
        tables = context.tables
        # Outbox rows serve the feed that consumers catch up from, and inbox ids must outlive
        # any redelivery: both are kept KUBE_EVENT_RETENTION_DAYS (30), far beyond the
        # catch-up interval (seconds) and the broker's visibility timeout (an hour).
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

    return handle_event, catch_up_events, purge_event_log


def _feed_token(context) -> str:
    """A short-lived `service` token for reading another service's feed."""
    settings = context.settings
    if settings.service_token:
        return settings.service_token
    return issue_token(
        settings.jwt_secret,
        sub=f"{context.service.name}-catch-up",
        roles=["service"],
        region=NATIONWIDE,
        ttl_seconds=300,
    )


def event_log_purge(service: str) -> PeriodicTask:
    """The nightly purge of a service's old event rows, for its `periodic_tasks`."""
    from celery.schedules import crontab

    return PeriodicTask(f"{service}.purge_event_log", crontab(hour=2, minute=15))


def event_catch_up(service: str) -> PeriodicTask:
    """The regular catch-up on the producers' feeds, for a consumer's `periodic_tasks`;
    each tick expires before the next, so ticks missed while the worker is down do not pile
    up."""
    every = catch_up_every_seconds()
    return PeriodicTask(f"{service}.catch_up_events", every, expires=every)
