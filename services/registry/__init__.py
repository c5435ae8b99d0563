"""The group registry: KUBE groups, their member households and mentoring."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from shared.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the registry's Flask app (web code is imported here, not by the worker)."""
    from services.registry.api import groups, imports, members, regions, reports
    from services.registry.service import SERVICE
    from shared.config import load_settings
    from shared.deadletters import dead_letter_blueprint
    from shared.event_api import event_blueprint
    from shared.http import create_service_app
    from shared.service import build_context

    context = build_context(SERVICE, settings or load_settings(SERVICE.name))
    return create_service_app(
        context,
        title="KUBE group registry",
        description="Groups, member households, regions and mentoring visits.",
        blueprints=[
            groups.blp,
            members.blp,
            regions.blp,
            imports.blp,
            reports.blp,
            dead_letter_blueprint(),
            event_blueprint(),
        ],
        streamed_upload_limits={"imports.Imports": context.settings.max_import_bytes},
    )
