"""The grant service: programmes, UEP grant applications and their approval workflow."""

from __future__ import annotations

from flask import Flask

from shared.config import Settings, load_settings
from shared.deadletters import dead_letter_blueprint
from shared.events.tasks import define_event_tasks
from shared.http import create_service_app

SERVICE = "grants"
define_event_tasks(SERVICE)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the grant service's Flask app."""
    from services.grants import models
    from services.grants.api import groups
    from services.grants.handlers import HANDLERS

    return create_service_app(
        settings or load_settings(SERVICE),
        title="KUBE grants",
        description="UEP grant applications and their approval workflow.",
        models=models,
        handlers=HANDLERS,
        blueprints=[groups.blp, dead_letter_blueprint()],
    )
