"""The notification service: templates, contacts and every SMS and email sent to groups."""

from __future__ import annotations

from flask import Flask

from shared.config import Settings, load_settings
from shared.deadletters import dead_letter_blueprint
from shared.events.tasks import define_event_tasks
from shared.http import create_service_app

SERVICE = "notifications"
define_event_tasks(SERVICE)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the notification service's Flask app."""
    from services.notifications import models
    from services.notifications.api import recipients
    from services.notifications.handlers import HANDLERS

    return create_service_app(
        settings or load_settings(SERVICE),
        title="KUBE notifications",
        description="SMS and email to groups, and the contacts to reach them.",
        models=models,
        handlers=HANDLERS,
        blueprints=[recipients.blp, dead_letter_blueprint()],
    )
