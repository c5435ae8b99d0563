"""The grant service: programmes, UEP grant applications and their approval workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from shared.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the grant service's Flask app (web code is imported here, not by the worker)."""
    from services.grants.api import (
        batches,
        calendar,
        decrees,
        grants,
        groups,
        programs,
        reports,
        workflows,
    )
    from services.grants.service import SERVICE
    from shared.config import load_settings
    from shared.deadletters import dead_letter_blueprint
    from shared.event_api import event_blueprint
    from shared.http import create_service_app
    from shared.service import build_context

    return create_service_app(
        build_context(SERVICE, settings or load_settings(SERVICE.name)),
        title="KUBE grants",
        description="UEP grant applications and their approval workflow.",
        blueprints=[
            programs.blp,
            grants.blp,
            decrees.blp,
            batches.blp,
            workflows.blp,
            calendar.blp,
            groups.blp,
            reports.blp,
            dead_letter_blueprint(),
            event_blueprint(),
        ],
        upload_endpoints=frozenset({"batches.BatchResult"}),
    )
