"""The registry's Celery worker: `celery -A services.registry.worker worker`."""

from services.registry import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
