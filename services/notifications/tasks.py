"""The notification worker's tasks, by purpose: deliver a batch of messages, send for the
messages that are due (after quiet hours, a backoff, or a lost send), and settle interrupted
ones.

A grant event's own messages are delivered by the worker that made them, right after the
task that handled the event, instead of waiting for another task: it saves a hand-over
through the broker on the path from a transition to its SMS. Anything more than one batch,
and everything the API queues (broadcasts, retries), goes out as deliver tasks.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter, defaultdict
from functools import lru_cache

from celery import Celery, shared_task
from celery.signals import task_postrun

from services.notifications.delivery import (
    NEW_MESSAGES,
    Delivery,
    Outcome,
    deliver_many,
    due_messages,
    recover_interrupted,
)
from services.notifications.providers.config import providers_from_env
from shared.config import env_int
from shared.db import utcnow
from shared.service import ServiceContext, task_context

log = logging.getLogger(__name__)

DELIVER = "notifications.deliver"
DISPATCH_DUE = "notifications.dispatch_due"
RECOVER_INTERRUPTED = "notifications.recover_interrupted"
# A retry this soon is sent with a countdown; a later one waits for the dispatcher.
COUNTDOWN_LIMIT_SECONDS = 60


def batch_size() -> int:
    """KUBE_DELIVERY_BATCH (default 50): messages one deliver task claims and records at once."""
    return max(1, env_int("KUBE_DELIVERY_BATCH", 50))


def batches(ids: list, size: int) -> list[list]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def send_deliveries(celery_app: Celery, queue: str, message_ids, countdown: float = 0) -> None:
    """Ask the workers to deliver these messages, a batch per task (best effort: the
    dispatcher sends again what is still queued)."""
    for batch in batches([str(message_id) for message_id in message_ids], batch_size()):
        try:
            celery_app.send_task(
                DELIVER,
                args=[batch],
                queue=queue,
                countdown=countdown or None,
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
            )
        except Exception as exc:
            log.warning(
                "delivery not sent; the dispatcher will",
                extra={"messages": len(batch), "error": type(exc).__name__},
            )
            return


# The messages this worker process's task made (filled after each commit, emptied after the
# task): a prefork pool process runs one task at a time.
_made_by_task: list[uuid.UUID] = []


def watch_commits(context: ServiceContext) -> None:
    """Deliver the messages a task's transactions made once the task is over: the first batch
    here and now, the rest by deliver tasks."""

    def after_commit(session) -> None:
        _made_by_task.extend(session.info.pop(NEW_MESSAGES, ()))

    def after_task(**_kwargs) -> None:
        if not _made_by_task:
            return
        made = list(_made_by_task)
        _made_by_task.clear()
        first, rest = made[: batch_size()], made[batch_size() :]
        send_deliveries(context.celery, context.settings.queue, rest)
        try:
            outcomes = deliver_many(_delivery(), first, utcnow())
        except Exception:
            log.exception("delivery after the event failed; sent as a task")
            send_deliveries(context.celery, context.settings.queue, first)
            return
        send_retries(context, outcomes)

    context.db.on_commit(after_commit)
    task_postrun.connect(after_task, weak=False)


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
        # KUBE_DELIVERY_CONCURRENCY (default 8): provider calls one worker process keeps in
        # flight; the rate limit still holds across them all.
        concurrency=max(1, env_int("KUBE_DELIVERY_CONCURRENCY", 8)),
    )


def send_retries(context: ServiceContext, outcomes: dict[uuid.UUID, Outcome]) -> None:
    """Send again, with a countdown, what is due again within a minute (by second)."""
    due: dict[int, list[uuid.UUID]] = defaultdict(list)
    for message_id, outcome in outcomes.items():
        if outcome.retry_in is not None and outcome.retry_in <= COUNTDOWN_LIMIT_SECONDS:
            due[math.ceil(outcome.retry_in)].append(message_id)
    for seconds, ids in sorted(due.items()):
        send_deliveries(context.celery, context.settings.queue, ids, countdown=seconds)


@shared_task(name=DELIVER)
def deliver_task(message_ids: list[str] | str) -> dict[str, int]:
    """Deliver a batch of messages (one id, as older tasks carry, is a batch of one)."""
    context = task_context("notifications")
    ids = [message_ids] if isinstance(message_ids, str) else message_ids
    outcomes = deliver_many(_delivery(), [uuid.UUID(i) for i in ids], utcnow())
    send_retries(context, outcomes)
    return dict(Counter(outcome.status for outcome in outcomes.values()))


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
