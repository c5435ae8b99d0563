"""The notification service's Celery worker: `celery -A services.notifications.worker worker`."""

from services.notifications import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
