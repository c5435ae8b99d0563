"""The notifications service's Celery worker: `celery -A services.notifications.worker worker`.

It builds the service's context without any web code."""

from services.notifications.service import SERVICE
from shared.config import load_settings
from shared.service import build_context, serve_tasks

celery = serve_tasks(build_context(SERVICE, load_settings(SERVICE.name)))
