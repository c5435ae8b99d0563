"""Events the registry consumes: none (it is the source of group and member events)."""

from shared.events.consumer import Handler

HANDLERS: dict[str, Handler] = {}
