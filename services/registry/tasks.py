"""The registry worker's own tasks: process bulk imports, and re-send those that stalled."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import Celery, shared_task

from services.registry.groups import Rules
from services.registry.import_run import process_import
from services.registry.imports import purge_import_files, stalled_imports
from shared.config import env_int
from shared.service import task_context

log = logging.getLogger(__name__)

PROCESS_IMPORT = "registry.process_import"
REQUEUE_STALLED_IMPORTS = "registry.requeue_stalled_imports"
PURGE_IMPORT_FILES = "registry.purge_import_files"
# A queued import may only be waiting behind a long one; re-send it at most this often.
REQUEUE_EVERY_SECONDS = 300


def enqueue_import(celery_app: Celery, queue: str, import_id: uuid.UUID) -> None:
    """Ask the registry worker to process an import."""
    celery_app.send_task(
        PROCESS_IMPORT,
        args=[str(import_id)],
        queue=queue,
        # Fail fast when Redis is down: the import stays queued and the requeue task sends it.
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
    )


# A run longer than this is stopped (the import ends as failed, saying so), so no file can
# hold the registry's worker for good.
IMPORT_TIME_LIMIT_SECONDS = env_int("KUBE_IMPORT_TIME_LIMIT_SECONDS", 3600)


@shared_task(
    name=PROCESS_IMPORT,
    bind=True,
    soft_time_limit=IMPORT_TIME_LIMIT_SECONDS,
    time_limit=IMPORT_TIME_LIMIT_SECONDS + 60,
)
def process_import_task(self, import_id: str) -> None:
    """Create the groups of one uploaded file."""
    context = task_context("registry")
    settings = context.settings
    log.info(
        "import received",
        extra={
            "import_id": import_id,
            "task_id": self.request.id,
            "redelivered": bool((self.request.delivery_info or {}).get("redelivered")),
        },
    )
    process_import(context.db, context.outbox, uuid.UUID(import_id), Rules.from_settings(settings))


@shared_task(name=REQUEUE_STALLED_IMPORTS)
def requeue_stalled_imports() -> int:
    """Send again the imports whose first send failed or whose worker died mid-run."""
    context = task_context("registry")
    sent = 0
    for import_id in stalled_imports(context.db):
        key = f"{context.settings.queue_prefix}:import-requeued:{import_id}"
        if not context.redis.set(key, 1, nx=True, ex=REQUEUE_EVERY_SECONDS):
            continue
        enqueue_import(context.celery, context.settings.queue, import_id)
        log.warning("stalled import sent again", extra={"import_id": str(import_id)})
        sent += 1
    return sent


@shared_task(name=PURGE_IMPORT_FILES)
def purge_import_files_task() -> int:
    """Drop the raw files of imports finished more than KUBE_IMPORT_FILE_RETENTION_DAYS ago."""
    context = task_context("registry")
    days = env_int("KUBE_IMPORT_FILE_RETENTION_DAYS", 7)
    purged = purge_import_files(context.db, kept_for=timedelta(days=days))
    log.info("import files purged", extra={"count": purged, "kept_days": days})
    return purged
