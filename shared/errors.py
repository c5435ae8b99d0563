"""One error hierarchy, rendered as RFC 9457 problem+json in one place."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An error the API reports to its caller."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str | None = None, *, errors: list[dict] | None = None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class BadRequest(ApiError):
    status, title = 400, "Bad Request"


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class NotFound(ApiError):
    status, title = 404, "Not Found"


class Conflict(ApiError):
    status, title = 409, "Conflict"


class PreconditionFailed(ApiError):
    status, title = 412, "Precondition Failed"


class PayloadTooLarge(ApiError):
    status, title = 413, "Content Too Large"


class Unprocessable(ApiError):
    status, title = 422, "Unprocessable Content"

    @classmethod
    def field(cls, field: str, message: str, detail: str | None = None) -> Unprocessable:
        """A 422 naming one bad field."""
        return cls(detail or message, errors=[{"field": field, "message": message}])


class PreconditionRequired(ApiError):
    status, title = 428, "Precondition Required"


class ServiceUnavailable(ApiError):
    status, title = 503, "Service Unavailable"


class PermanentError(Exception):
    """A task failure that retrying cannot fix (bad payload, a rule the event breaks)."""


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    """Build an application/problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    return response


def flatten_messages(messages: Any, prefix: str = "") -> list[dict]:
    """Turn marshmallow's nested error dict into a flat list of {field, message}."""
    out: list[dict] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            # webargs nests body errors under the location ("json", "query", "files").
            if not prefix and key in ("json", "query", "form", "files", "headers", "view_args"):
                out.extend(flatten_messages(value, ""))
                continue
            name = f"{prefix}.{key}" if prefix else str(key)
            out.extend(flatten_messages(value, name))
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        for message in messages:
            out.append({"field": prefix or "_schema", "message": message})
    elif isinstance(messages, list | tuple):
        for index, value in enumerate(messages):
            out.extend(flatten_messages(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.append({"field": prefix or "_schema", "message": str(messages)})
    return out


def handle_http_exception(error: HTTPException) -> Response:
    """Render werkzeug's and webargs' HTTP errors as problem+json."""
    data = getattr(error, "data", None) or {}
    errors = None
    detail = error.description
    if "messages" in data:
        errors = flatten_messages(data["messages"])
        if error.code == 400:
            detail = "; ".join(e["message"] for e in errors) or detail
        else:
            detail = "Some fields are invalid: " + ", ".join(sorted({e["field"] for e in errors}))
    response = problem(error.code or 500, error.name, detail, errors=errors)
    for key, value in (data.get("headers") or {}).items():
        response.headers[key] = value
    if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def handle_api_error(error: ApiError) -> Response:
    response = problem(error.status, error.title, error.detail, errors=error.errors, **error.extra)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="kube"'
    return response


def handle_unexpected(error: Exception) -> Response:
    from flask import current_app

    current_app.logger.exception("unhandled error")
    return problem(500, "Internal Server Error", "An unexpected error occurred.")


def register_error_handlers(app: Flask) -> None:
    """Map every error the app can raise to problem+json."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
