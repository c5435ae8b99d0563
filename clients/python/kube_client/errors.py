"""Exceptions the client raises: one per problem status, and one for a dead connection."""

from __future__ import annotations

import json
from typing import Any

import requests


class KubeClientError(Exception):
    """Base of every error this client raises."""


class ProblemError(KubeClientError):
    """The service answered 4xx/5xx; an RFC 9457 problem (or what the body says of it)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        type: str = "about:blank",
        errors: dict[str, list[str]] | None = None,
        body: dict[str, Any] | None = None,
        response: requests.Response | None = None,
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.errors: dict[str, list[str]] = errors or {}
        self.body: dict[str, Any] = body if body is not None else {}
        self.response = response
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.status} {self.title}"
        if self.detail:
            text += f": {self.detail}"
        if self.errors:
            named = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items())
            text += f" ({named})"
        return text

    @property
    def guards(self) -> list[str]:
        """The names of the workflow guards that failed (a 409 from a transition), in order."""
        return [
            e["guard"] for e in self.body.get("errors", []) if isinstance(e, dict) and "guard" in e
        ]

    @property
    def request_id(self) -> str | None:
        """The X-Request-ID of the answer, to find the request in the service's logs."""
        return None if self.response is None else self.response.headers.get("X-Request-ID")

    @classmethod
    def from_response(cls, response: requests.Response) -> ProblemError:
        """The exception for an error answer: the subclass for its status, with the problem's
        fields when the body is a problem, or what is known (status, reason, text) when not."""
        body = _json_object(response)
        status = _int(body.get("status")) or response.status_code
        if body.get("title") is None:
            # Not a problem document (a proxy's HTML page, plain text, JSON of another shape).
            text = "" if body else response.text.strip()
            detail = body.get("detail") or (text[:500] if text else None)
            body = {
                **body,
                "type": "about:blank",
                "title": response.reason or "HTTP error",
                "status": status,
            }
            if detail:
                body["detail"] = detail
        exception = PROBLEM_CLASSES.get(response.status_code, ProblemError)
        return exception(
            status=status,
            title=str(body.get("title")),
            detail=None if body.get("detail") is None else str(body.get("detail")),
            type=str(body.get("type") or "about:blank"),
            errors=_field_errors(body.get("errors")),
            body=body,
            response=response,
        )


class Unauthorized(ProblemError):
    """401: no valid token."""


class Forbidden(ProblemError):
    """403: the token's roles may not do this."""


class NotFound(ProblemError):
    """404: no such resource in the caller's region (existence never leaks)."""


class Conflict(ProblemError):
    """409: the state refuses (an illegal transition, failed guards, a duplicate NIK)."""


class PreconditionFailed(ProblemError):
    """412: If-Match names an older version; `body["current_etag"]` is the current one."""


class ValidationFailed(ProblemError):
    """422: invalid fields, each named in `errors`."""


class ServiceUnavailable(ProblemError):
    """503: a dependency of the service is down (still so after the client's retries)."""


class TransportError(KubeClientError):
    """No answer: the connection failed or timed out (after the client's retries)."""


class WaitTimeout(KubeClientError, TimeoutError):
    """A wait (an import to finish) did not end within its timeout."""


PROBLEM_CLASSES: dict[int, type[ProblemError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    422: ValidationFailed,
    503: ServiceUnavailable,
}


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field_errors(errors: object) -> dict[str, list[str]]:
    """The problem's `errors` list as field -> messages; a failed guard is keyed by its name,
    an error naming neither by ""."""
    fields: dict[str, list[str]] = {}
    if isinstance(errors, dict):  # some producers send {field: [messages]} already
        for key, value in errors.items():
            fields[str(key)] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return fields
    if not isinstance(errors, list):
        return fields
    for error in errors:
        if not isinstance(error, dict):
            fields.setdefault("", []).append(str(error))
            continue
        key = error.get("field") or error.get("guard") or ""
        fields.setdefault(str(key), []).append(str(error.get("message", "")))
    return fields
