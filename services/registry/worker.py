"""The registry's Celery worker: `celery -A services.registry.worker worker`.

It builds the service's context without any web code."""

import resource

from celery.signals import worker_process_init

from services.registry.service import SERVICE
from shared.config import env_int, load_settings
from shared.service import build_context, serve_tasks

celery = serve_tasks(build_context(SERVICE, load_settings(SERVICE.name)))


@worker_process_init.connect
def limit_memory(**_kwargs) -> None:
    """Each pool process parses uploaded workbooks: cap its memory, so a file that slipped
    past the upload checks fails its import (MemoryError) instead of the machine."""
    limit = env_int("KUBE_WORKER_MEMORY_LIMIT_MB", 4096) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
