"""Which service publishes and which receives each event type. Each service declares the
types it publishes and those it subscribes to (as data, beside its handler table); the
platform's start-up gathers those declarations into one `Subscriptions` for the relay and
one producer per type (`producers_by_type`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from shared.events.contracts import CONTRACTS


class Subscriptions:
    """Every service's subscribed event types, checked against the declared contracts."""

    def __init__(self, by_service: Mapping[str, Iterable[str]]):
        self.by_service = {service: tuple(types) for service, types in by_service.items()}
        for service, types in self.by_service.items():
            unknown = set(types) - set(CONTRACTS)
            if unknown:
                raise RuntimeError(f"{service} subscribes to undeclared events: {sorted(unknown)}")

    def subscribers_of(self, event_type: str) -> list[str]:
        """Services that receive `event_type`, in a stable order."""
        return sorted(s for s, types in self.by_service.items() if event_type in types)


def check_handler_table(service: str, handlers: Mapping[str, object], subscribed: Iterable[str]):
    """Refuse a service whose handler table and subscriptions disagree, naming each mismatch."""
    subscribed = set(subscribed)
    problems = []
    unknown = subscribed - set(CONTRACTS)
    if unknown:
        problems.append(f"subscribes to undeclared event types {sorted(unknown)}")
    missing = subscribed - set(handlers)
    if missing:
        problems.append(f"subscribes to {sorted(missing)} but has no handler for them")
    unused = set(handlers) - subscribed
    if unused:
        problems.append(f"has handlers for {sorted(unused)} but does not subscribe to them")
    if problems:
        raise RuntimeError(
            f"The {service} service's handler table does not match its subscriptions: "
            + "; ".join(problems)
            + ". Declare both in its service definition."
        )


def check_publications(service: str, publishes: Iterable[str]) -> None:
    """Refuse a service that declares publishing an event type no contract describes."""
    unknown = set(publishes) - set(CONTRACTS)
    if unknown:
        raise RuntimeError(
            f"The {service} service publishes undeclared event types {sorted(unknown)}: "
            "add their contracts to shared/events/contracts.py."
        )


def producers_by_type(by_service: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """The one service that publishes each declared event type, from each service's
    `publishes`; refuses a type with no producer or with two."""
    producers: dict[str, list[str]] = {event_type: [] for event_type in CONTRACTS}
    for service, types in by_service.items():
        check_publications(service, types)
        for event_type in types:
            producers[event_type].append(service)
    problems = [
        f"{event_type} is published by {' and '.join(sorted(services)) or 'no service'}"
        for event_type, services in sorted(producers.items())
        if len(services) != 1
    ]
    if problems:
        raise RuntimeError("Each event type has one producer: " + "; ".join(problems) + ".")
    return {event_type: services[0] for event_type, services in sorted(producers.items())}
