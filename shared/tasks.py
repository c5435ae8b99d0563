"""The Celery app factory with the platform's reliability settings, explained."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from shared.config import Settings

# Longer than the largest retry delay (KUBE_RETRY_BACKOFF_MAX_SECONDS): with Redis, a task
# that is unacknowledged for longer than this is handed to another worker, so a retry held
# with a countdown must never outlive it or it would run twice.
VISIBILITY_TIMEOUT_SECONDS = 3600


def configure_celery(celery_app: Celery, redis_url: str, queue: str | None = None) -> Celery:
    """Apply the settings every KUBE worker and publisher uses."""
    celery_app.conf.update(
        broker_url=redis_url,
        # Acknowledge after the task finishes, so a crash mid-task means redelivery, not loss.
        task_acks_late=True,
        # A pool process killed mid-task (OOM, SIGKILL) puts the message back on the queue.
        task_reject_on_worker_lost=True,
        # Take one message at a time: with late acks, prefetched messages wait behind a slow one.
        worker_prefetch_multiplier=1,
        # JSON only: no pickle, so a message can never execute code, and any service can read it.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Nobody waits on task results; effects live in the services' databases.
        task_ignore_result=True,
        result_backend=None,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        broker_connection_retry_on_startup=True,
        # Our own JSON log handler stays in place inside workers.
        worker_hijack_root_logger=False,
        # Workers restart pool processes now and then to bound memory growth.
        worker_max_tasks_per_child=1000,
        enable_utc=True,
        timezone="UTC",
    )
    if queue:
        celery_app.conf.task_default_queue = queue
        celery_app.conf.task_queues = (Queue(queue),)
    return celery_app


def create_celery(name: str, settings: Settings) -> Celery:
    """A service's Celery app: its own queue, the platform's settings, no web framework."""
    return configure_celery(Celery(name), settings.redis_url, settings.queue)
