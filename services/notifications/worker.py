"""The notifications service's Celery worker: `celery -A services.notifications.worker worker`.

It builds the service's context without any web code."""

from services.notifications.service import SERVICE
from services.notifications.tasks import watch_commits
from shared.config import load_settings
from shared.service import build_context, serve_tasks

context = build_context(SERVICE, load_settings(SERVICE.name))
watch_commits(context)
celery = serve_tasks(context)
