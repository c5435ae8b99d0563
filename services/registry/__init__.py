"""The group registry: KUBE groups, their member households and mentoring."""

from __future__ import annotations

from flask import Flask

from shared.config import Settings, load_settings
from shared.deadletters import dead_letter_blueprint
from shared.events.tasks import define_event_tasks
from shared.http import create_service_app

SERVICE = "registry"
define_event_tasks(SERVICE)

from services.registry import tasks  # noqa: E402, F401 - registers the worker's tasks


def create_app(settings: Settings | None = None) -> Flask:
    """Build the registry's Flask app."""
    from services.registry import models
    from services.registry.api import groups, imports, members, regions
    from services.registry.handlers import HANDLERS

    return create_service_app(
        settings or load_settings(SERVICE),
        title="KUBE group registry",
        description="Groups, member households, regions and mentoring visits.",
        models=models,
        handlers=HANDLERS,
        blueprints=[groups.blp, members.blp, regions.blp, imports.blp, dead_letter_blueprint()],
        upload_endpoints=frozenset({"imports.Imports"}),
    )
