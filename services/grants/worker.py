"""The grant service's Celery worker: `celery -A services.grants.worker worker`."""

from services.grants import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
