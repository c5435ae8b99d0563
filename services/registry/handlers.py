"""Events the registry consumes (none yet: it is the source of group and member events)."""

HANDLERS: dict = {}
