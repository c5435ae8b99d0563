"""Celery beat: the platform's periodic jobs, sent to each service's own queue.

Run exactly one: `celery -A shared.scheduler beat`.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

from shared.config import SERVICES, queue_name
from shared.tasks import configure_celery

_prefix = os.environ.get("KUBE_QUEUE_PREFIX") or "kube"
celery = configure_celery(
    Celery("kube-scheduler"), os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)
celery.conf.beat_schedule = {
    f"{service}-purge-event-log": {
        "task": f"{service}.purge_event_log",
        "schedule": crontab(hour=2, minute=15),
        "options": {"queue": queue_name(_prefix, service)},
    }
    for service in SERVICES
}
# The API's send of a new import fails while Redis is down; this sends it again. Expires
# before the next one, so runs missed while the worker is busy do not pile up.
celery.conf.beat_schedule["registry-requeue-stalled-imports"] = {
    "task": "registry.requeue_stalled_imports",
    "schedule": 60.0,
    "options": {"queue": queue_name(_prefix, "registry"), "expires": 55},
}
