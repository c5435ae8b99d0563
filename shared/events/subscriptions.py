"""Which service receives which event type: declared once, as data."""

from __future__ import annotations

from shared.events.contracts import CONTRACTS

_GROUP_EVENTS = (
    "group.registered",
    "group.updated",
    "group.status_changed",
    "member.added",
    "member.updated",
    "member.removed",
)

SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    # grants keeps a projection of groups to check applications without calling the registry.
    "grants": _GROUP_EVENTS,
    # notifications keeps a projection of members' contacts to address messages.
    "notifications": _GROUP_EVENTS,
}


def subscribers_of(event_type: str) -> list[str]:
    """Services that receive `event_type`, in a stable order."""
    return sorted(s for s, types in SUBSCRIPTIONS.items() if event_type in types)


def _check() -> None:
    for service, types in SUBSCRIPTIONS.items():
        unknown = set(types) - set(CONTRACTS)
        if unknown:
            raise RuntimeError(f"{service} subscribes to undeclared events: {sorted(unknown)}")


_check()
