"""Celery beat: the periodic tasks each service declares, sent to that service's own queue.

Run exactly one: `celery -A kube.scheduler beat`.
"""

from __future__ import annotations

import os

from celery import Celery

from kube.catalogue import SERVICES
from shared.config import queue_name
from shared.tasks import configure_celery

_prefix = os.environ.get("KUBE_QUEUE_PREFIX") or "kube"
celery = configure_celery(
    Celery("kube-scheduler"), os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
)
celery.conf.beat_schedule = {
    periodic.task: {
        "task": periodic.task,
        "schedule": periodic.schedule,
        "options": {
            "queue": queue_name(_prefix, service.name),
            **({"expires": periodic.expires} if periodic.expires else {}),
        },
    }
    for service in SERVICES
    for periodic in service.periodic_tasks
}
