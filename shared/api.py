"""The Blueprint every service's routes use: flask-smorest's, with each operation's problem
responses documented from what the route does, so the OpenAPI document lists every status a
client must handle, each as application/problem+json."""

from __future__ import annotations

import http

import flask_smorest
from flask.views import MethodView

BODY_METHODS = ("post", "put", "patch")
# Every authenticated route: no valid token, a role that may not, a dependency down.
_ALWAYS = (401, 403, 503)
# A body that cannot be read, is too large, is not JSON, or conflicts with the current state.
_WITH_BODY = (400, 409, 413, 415, 422)
_WITH_ID = (404,)
_WITH_QUERY = (422,)

IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "description": "The ETag of your last read; a change to an older version is refused (412), "
    "and a change without it too (428).",
    "schema": {"type": "string", "pattern": r'^(W/)?"\d+"$|^\*$', "maxLength": 100},
}
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": "Any unique string: a retry with the same key answers the first response "
    "instead of acting twice (kept for a day).",
    "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,200}$"},
}


def problem_statuses(method: str, rule: str, *, if_match: bool) -> list[int]:
    """The error statuses an operation can answer, from its method and URL."""
    statuses = set(_ALWAYS)
    if "<" in rule:
        statuses.update(_WITH_ID)
    if method in BODY_METHODS:
        statuses.update(_WITH_BODY)
    else:
        statuses.update(_WITH_QUERY)
    if if_match:
        statuses.update((409, 412, 428))
    return sorted(statuses)


def requires_if_match(func):
    """Mark a method that refuses a change without a current If-Match (documents 412, 428)."""
    func._kube_if_match = True
    return func


class Blueprint(flask_smorest.Blueprint):
    def route(self, rule, *, parameters=None, tags=None, **options):
        """Register a MethodView and document each of its methods' problem responses."""

        def decorator(view):
            if isinstance(view, type) and issubclass(view, MethodView):
                for method in ("get", "post", "put", "patch", "delete"):
                    func = getattr(view, method, None)
                    if func is not None:
                        setattr(view, method, self._document(method, rule, func))
            return super(Blueprint, self).route(rule, parameters=parameters, tags=tags, **options)(
                view
            )

        return decorator

    def _document(self, method: str, rule: str, func):
        if_match = getattr(func, "_kube_if_match", False)
        for status in problem_statuses(method, self.url_prefix_rule(rule), if_match=if_match):
            func = self.alt_response(status, response=http.HTTPStatus(status).name)(func)
        extra = []
        if if_match:
            extra.append(IF_MATCH)
        if method == "post":
            extra.append(IDEMPOTENCY_KEY)
        if extra:
            func = self.doc(parameters=extra)(func)
        return func

    def url_prefix_rule(self, rule: str) -> str:
        return f"{self.url_prefix or ''}{rule}"
