"""The platform's services, imported openly: what start-up needs to know of each of them."""

from __future__ import annotations

from services.grants.service import SERVICE as GRANTS
from services.notifications.service import SERVICE as NOTIFICATIONS
from services.registry.service import SERVICE as REGISTRY
from shared.events.subscriptions import Subscriptions, producers_by_type
from shared.service import Service

SERVICES: tuple[Service, ...] = (REGISTRY, GRANTS, NOTIFICATIONS)
BY_NAME: dict[str, Service] = {service.name: service for service in SERVICES}
NAMES: tuple[str, ...] = tuple(BY_NAME)

# Which service receives which event type, gathered from each consumer's own declaration.
SUBSCRIPTIONS = Subscriptions({service.name: service.subscribes_to for service in SERVICES})
# The one service that publishes each event type, from each producer's own declaration.
PRODUCERS: dict[str, str] = producers_by_type({s.name: s.publishes for s in SERVICES})


def app_target(name: str) -> str:
    """The service's WSGI app as gunicorn names it."""
    return f"services.{name}:create_app()"


def worker_target(name: str) -> str:
    """The service's Celery app as `celery -A` names it."""
    return f"services.{name}.worker"
