"""One hierarchy of domain errors. Domain code raises these; only the HTTP layer
(`shared.problems`) decides which status each one answers with."""

from __future__ import annotations


class DomainError(Exception):
    """Something the caller asked for that cannot be done, said in words the caller can act on.

    `errors` lists problems per field ({"field", "message"}) or per guard ({"guard", ...});
    `extra` adds members to the problem document (e.g. `status_now`).
    """

    def __init__(self, detail: str | None = None, *, errors: list[dict] | None = None, **extra):
        super().__init__(detail or type(self).__name__)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class Malformed(DomainError):
    """The request cannot be read at all (bad JSON, a malformed header)."""


class Unauthenticated(DomainError):
    """No valid credentials."""


class NotPermitted(DomainError):
    """The caller is known but their role may not do this."""


class NotFound(DomainError):
    """No such object, or none the caller's region may see (existence never leaks)."""


class Conflict(DomainError):
    """The current state forbids the change: a duplicate, an illegal transition, a failed guard."""


class StaleVersion(DomainError):
    """The caller's copy is older than the stored one."""


class VersionRequired(DomainError):
    """A change needs the version the caller last read (If-Match)."""


class TooLarge(DomainError):
    """The request body is larger than allowed."""


class UnsupportedMediaType(DomainError):
    """The body is not in a format this route reads."""


class InvalidInput(DomainError):
    """Input that is well-formed but breaks a rule; `errors` names every bad field."""

    @classmethod
    def field(cls, field: str, message: str, detail: str | None = None) -> InvalidInput:
        """An error naming one bad field."""
        return cls(detail or message, errors=[{"field": field, "message": message}])


class Unavailable(DomainError):
    """A dependency (database, Redis) is unreachable; trying again later may work."""


class PermanentError(Exception):
    """A task failure that retrying cannot fix (bad payload, a rule the event breaks)."""
