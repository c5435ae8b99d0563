"""The notification worker's tasks, by purpose: deliver one message, send for the messages
that are due (after quiet hours, a backoff, or a lost send), and settle interrupted ones."""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache

from celery import Celery, shared_task

from services.notifications.delivery import (
    NEW_MESSAGES,
    Delivery,
    deliver,
    due_messages,
    recover_interrupted,
)
from services.notifications.providers.config import providers_from_env
from shared.db import utcnow
from shared.service import ServiceContext, task_context

log = logging.getLogger(__name__)

DELIVER = "notifications.deliver"
DISPATCH_DUE = "notifications.dispatch_due"
RECOVER_INTERRUPTED = "notifications.recover_interrupted"
# A retry this soon is sent with a countdown; a later one waits for the dispatcher.
COUNTDOWN_LIMIT_SECONDS = 60


def send_deliveries(celery_app: Celery, queue: str, message_ids, countdown: float = 0) -> None:
    """Ask the worker to deliver these messages (best effort: the dispatcher sends again what
    is still queued)."""
    for message_id in message_ids:
        try:
            celery_app.send_task(
                DELIVER,
                args=[str(message_id)],
                queue=queue,
                countdown=countdown or None,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
            )
        except Exception as exc:
            log.warning(
                "delivery not sent; the dispatcher will",
                extra={"message_id": str(message_id), "error": type(exc).__name__},
            )
            return


def watch_commits(context: ServiceContext) -> None:
    """Send for the messages a transaction made once it commits."""

    def after_commit(session) -> None:
        made = session.info.pop(NEW_MESSAGES, None)
        if made:
            send_deliveries(context.celery, context.settings.queue, made)

    context.db.on_commit(after_commit)


@lru_cache(maxsize=1)
def _delivery() -> Delivery:
    context = task_context("notifications")
    settings = context.settings
    providers = providers_from_env()
    return Delivery(
        db=context.db,
        outbox=context.outbox,
        sms=providers.sms,
        email=providers.email,
        limiter=providers.limiter(context.redis, f"{settings.queue_prefix}:ratelimit"),
        max_attempts=settings.task_max_retries + 1,
        backoff_seconds=settings.retry_backoff_seconds,
        backoff_max_seconds=settings.retry_backoff_max_seconds,
    )


@shared_task(name=DELIVER)
def deliver_task(message_id: str) -> str:
    """Deliver one message to its provider."""
    context = task_context("notifications")
    outcome = deliver(_delivery(), uuid.UUID(message_id), utcnow())
    if outcome.retry_in is not None and outcome.retry_in <= COUNTDOWN_LIMIT_SECONDS:
        send_deliveries(
            context.celery, context.settings.queue, [message_id], countdown=outcome.retry_in
        )
    return outcome.status


@shared_task(name=DISPATCH_DUE)
def dispatch_due_task() -> int:
    """Send for every queued message that is due and was not sent for lately."""
    context = task_context("notifications")
    with context.db.transaction() as session:
        due = due_messages(session, utcnow())
    send_deliveries(context.celery, context.settings.queue, due)
    return len(due)


@shared_task(name=RECOVER_INTERRUPTED)
def recover_interrupted_task() -> int:
    """Settle messages whose delivery was interrupted mid-hand-off (as failed, visibly)."""
    context = task_context("notifications")
    with context.db.transaction() as session:
        count = recover_interrupted(session, context.outbox, utcnow())
    if count:
        log.warning("interrupted deliveries marked failed", extra={"count": count})
    return count
