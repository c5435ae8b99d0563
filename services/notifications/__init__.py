"""The notification service: templates, contacts and every SMS and email sent to groups."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from shared.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the notification service's Flask app (web code is imported here, not by the
    worker)."""
    from services.notifications.api import (
        messages,
        outreach,
        providers,
        recipients,
        reports,
        rules,
    )
    from services.notifications.service import SERVICE
    from shared.config import load_settings
    from shared.deadletters import dead_letter_blueprint
    from shared.event_api import event_blueprint
    from shared.http import create_service_app
    from shared.service import build_context

    return create_service_app(
        build_context(SERVICE, settings or load_settings(SERVICE.name)),
        title="KUBE notifications",
        description="SMS and email to groups, and the contacts to reach them.",
        blueprints=[
            messages.blp,
            rules.rules_blp,
            rules.templates_blp,
            outreach.broadcasts_blp,
            outreach.opt_outs_blp,
            outreach.mailboxes_blp,
            providers.blp,
            recipients.blp,
            reports.blp,
            dead_letter_blueprint(),
            event_blueprint(),
        ],
        public_endpoints=frozenset({"providers.ProviderCallback", "providers.ProviderInbound"}),
        security_schemes=providers.SECURITY,
    )
