"""RFC 9457 problem+json: how every error of every service is rendered, in one place."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, json
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    OperationalError,
    PendingRollbackError,
    SQLAlchemyError,
)
from werkzeug.exceptions import HTTPException

from shared import errors
from shared.validation import flatten_messages

PROBLEM_JSON = "application/problem+json"

# Each domain error's HTTP status and title; the one place where statuses are decided.
STATUS: dict[type[errors.DomainError], tuple[int, str]] = {
    errors.Malformed: (400, "Bad Request"),
    errors.Unauthenticated: (401, "Unauthorized"),
    errors.NotPermitted: (403, "Forbidden"),
    errors.NotFound: (404, "Not Found"),
    errors.Conflict: (409, "Conflict"),
    errors.StaleVersion: (412, "Precondition Failed"),
    errors.TooLarge: (413, "Content Too Large"),
    errors.UnsupportedMediaType: (415, "Unsupported Media Type"),
    errors.InvalidInput: (422, "Unprocessable Content"),
    errors.VersionRequired: (428, "Precondition Required"),
    errors.Unavailable: (503, "Service Unavailable"),
}


def status_of(error: errors.DomainError) -> tuple[int, str]:
    """The status and title of a domain error (a subclass answers as its parent does)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500, "Internal Server Error"


class FieldErrorSchema(ma.Schema):
    field = ma.fields.String(
        metadata={"description": "the bad field, dotted for nested ones (members.2.nik)"}
    )
    guard = ma.fields.String(metadata={"description": "the stable name of a failed workflow guard"})
    message = ma.fields.String(required=True, metadata={"description": "what is wrong (English)"})
    message_id = ma.fields.String(metadata={"description": "the same in Bahasa Indonesia"})


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document (other members may be added, as the RFC allows)."""

    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(required=True, metadata={"example": "about:blank"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    errors = ma.fields.List(
        ma.fields.Nested(FieldErrorSchema),
        metadata={"description": "every bad field or failed guard"},
    )
    # The members some problems add.
    current_etag = ma.fields.String(
        metadata={"description": "412: the resource's ETag now, to read again"}
    )
    status_now = ma.fields.String(
        metadata={"description": "409 from a workflow: the state its subject is in"}
    )
    group_id = ma.fields.UUID(
        metadata={
            "description": "409 for a person already in another active group: that group, "
            "when it lies in the caller's region"
        }
    )


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """Build an application/problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)


def handle_http_exception(error: HTTPException) -> Response:
    """Render werkzeug's and webargs' HTTP errors as problem+json."""
    data = getattr(error, "data", None) or {}
    field_errors = None
    detail = error.description
    if "messages" in data:
        field_errors = flatten_messages(data["messages"])
        if error.code == 400:
            detail = "; ".join(e["message"] for e in field_errors) or detail
        else:
            fields = ", ".join(sorted({e["field"] for e in field_errors}))
            detail = "Some fields are invalid: " + fields
    response = problem(error.code or 500, error.name, detail, errors=field_errors)
    for key, value in (data.get("headers") or {}).items():
        response.headers[key] = value
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def problem_body(error: errors.DomainError) -> dict:
    """A domain error as a problem document's members (an item of a bulk answer, too)."""
    status, title = status_of(error)
    body = {"type": "about:blank", "title": title, "status": status}
    if error.detail:
        body["detail"] = error.detail
    extra = {"errors": error.errors, **error.extra}
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def handle_domain_error(error: errors.DomainError) -> Response:
    status, title = status_of(error)
    response = problem(status, title, error.detail, errors=error.errors, **error.extra)
    if isinstance(error, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer realm="kube"'
    if isinstance(error, errors.Unavailable):
        response.headers["Retry-After"] = "5"
    return response


def handle_database_unreachable(error: SQLAlchemyError) -> Response:
    """A connection lost mid-request (a restart, a terminated backend) is a 503 to retry; the
    pool drops the dead connection and the next request gets a fresh one. A session left
    unusable by such a loss earlier in the request (PendingRollbackError) is one too."""
    lost = isinstance(error, OperationalError | InterfaceError | PendingRollbackError) or getattr(
        error, "connection_invalidated", False
    )
    if not lost:
        return handle_unexpected(error)
    current_app.logger.warning(
        "database unreachable", extra={"error": type(getattr(error, "orig", error)).__name__}
    )
    response = problem(
        503, "Service Unavailable", "The database is unreachable; try again in a few seconds."
    )
    response.headers["Retry-After"] = "5"
    return response


def handle_too_deep(error: RecursionError) -> Response:
    """JSON nested deeper than the parser goes is malformed input, not a server error."""
    return problem(400, "Bad Request", "The JSON body is nested too deeply.")


def handle_unexpected(error: Exception) -> Response:
    current_app.logger.exception("unhandled error")
    return problem(500, "Internal Server Error", "An unexpected error occurred.")


def register_error_handlers(app: Flask) -> None:
    """Map every error the app can raise to problem+json."""
    app.register_error_handler(errors.DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DBAPIError, handle_database_unreachable)
    app.register_error_handler(PendingRollbackError, handle_database_unreachable)
    app.register_error_handler(RecursionError, handle_too_deep)
    app.register_error_handler(Exception, handle_unexpected)
