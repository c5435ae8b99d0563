"""The grant worker's own tasks: announcing deadlines."""

from __future__ import annotations

import logging

from celery import shared_task

from services.grants.deadlines import announce_deadlines
from shared.db import utcnow
from shared.service import task_context

log = logging.getLogger(__name__)

ANNOUNCE_DEADLINES = "grants.announce_deadlines"


@shared_task(name=ANNOUNCE_DEADLINES)
def announce_deadlines_task() -> dict[str, int]:
    """Announce the deadlines passed (and usage reports due) since the last run, once each."""
    context = task_context("grants")
    with context.db.transaction() as session:
        counts = announce_deadlines(session, context.outbox, utcnow())
    if any(counts.values()):
        log.info("deadlines announced", extra=counts)
    return counts
