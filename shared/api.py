"""The OpenAPI contract every service's routes keep: flask-smorest's Api and Blueprint, with
each operation named, every status it can answer documented as problem+json, every header it
reads or sets described, and schemas a generated client can trust (named enums, typed
nullable objects). Component names are ours, never `http.HTTPStatus` names, which differ
between Python versions."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import flask_smorest
from apispec import BasePlugin
from flask_smorest.utils import prepare_response

from shared.auth import require_roles
from shared.errors import NotPermitted
from shared.problems import PROBLEM_JSON, ProblemSchema
from shared.tokens import ROLES
from shared.validation import Choice

METHODS = ("get", "post", "put", "patch", "delete")
BODY_METHODS = ("post", "put", "patch")
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"

# Each problem response, by status: why an operation answers it.
PROBLEMS: dict[int, str] = {
    400: "The request cannot be read: malformed JSON or a malformed header.",
    401: "No valid bearer token.",
    403: "The caller's role may not do this.",
    404: "No such resource in the caller's region (another region's is as absent).",
    409: "The current state forbids this: a duplicate, an action not possible from this "
    "status, failed guards (each named in `errors`), or a request with the same "
    "Idempotency-Key still running.",
    412: "If-Match names an older version: read again (`current_etag`) and retry.",
    413: "The body is larger than allowed.",
    415: "The body is not in a format this operation reads.",
    422: "Invalid input: `errors` names every bad field or query parameter.",
    428: "A change needs If-Match with the ETag of your last read.",
    503: "A dependency (database, queue) is unreachable; retry after Retry-After seconds.",
}
UNEXPECTED = "UnexpectedProblem"


def problem_response(status: int) -> str:
    """The name of the shared response component of a problem status."""
    return f"Problem{status}"


HEADERS: dict[str, dict] = {
    "X-Request-ID": {
        "description": "This request's id: yours when you sent a safe one, else a new one. "
        "It is in every log line of the request and in the events it caused.",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    },
    "ETag": {
        "description": "The resource's version; send it back as If-Match to change it.",
        "required": True,
        "schema": {"type": "string", "pattern": r'^"[0-9]+"$', "example": '"3"'},
    },
    "Location": {
        "description": "Where to read the resource this request created.",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Idempotent-Replayed": {
        "description": "Set when this is the kept answer to an earlier request with the same "
        "Idempotency-Key; nothing was done a second time.",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {
        "description": "The scheme to authenticate with.",
        "required": True,
        "schema": {"type": "string", "example": 'Bearer realm="kube"'},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "string", "pattern": r"^[0-9]+$"},
    },
}
# Headers a problem response carries besides X-Request-ID.
_PROBLEM_HEADERS = {401: ("WWW-Authenticate",), 503: ("Retry-After",)}

PARAMETERS: dict[str, dict] = {
    "X-Request-ID": {
        "in": "header",
        "required": False,
        "description": "Your id for this request, echoed in X-Request-ID and used in every log "
        "line and event it causes; a value outside the pattern is replaced by a new id.",
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    },
    "If-Match": {
        "in": "header",
        "required": True,
        "description": "The ETag of your last read; a change to an older version is refused "
        "(412), and a change without it too (428).",
        "schema": {"type": "string", "pattern": r'^(W/)?"\d+"$|^\*$', "maxLength": 100},
    },
    "Idempotency-Key": {
        "in": "header",
        "required": False,
        "description": "Any unique string: a retry with the same key answers the first response "
        "instead of acting twice (kept for a day). The same key with another request is a 422; "
        "while the first is still running, a 409.",
        "schema": {"type": "string", "pattern": r"^[\x21-\x7e]{1,200}$"},
    },
}

_HINTS = "x-kube-operation"  # carries an Operation from the Blueprint to the plugin
# The vendor extension listing the roles an operation admits (absent: no bearer token taken).
ROLES_EXTENSION = "x-roles"
# Present (true) on an operation only a nationwide token may call.
NATIONWIDE_EXTENSION = "x-nationwide"


@dataclass(frozen=True)
class Operation:
    """What the contract says of an operation beyond its schemas."""

    operation_id: str
    roles: tuple[str, ...] = ()
    problems: tuple[int, ...] = ()
    if_match: bool = False
    etag: bool = False
    location: bool = False
    # Why only a nationwide token (region "*") may call it, whatever its role (it reads every
    # region's data, or changes what every region shares); None: any region's token may.
    nationwide: str | None = None

    def statuses(self, method: str, path: str, *, body: bool, query: bool) -> set[int]:
        """Every problem status the operation can answer."""
        statuses = {401, 503, *self.problems}
        # A token names known roles only, so an operation admitting every role never
        # answers 403 for the role.
        if (self.roles and set(self.roles) != set(ROLES)) or self.nationwide is not None:
            statuses.add(403)
        if "{" in path:
            statuses.add(404)
        if body:
            statuses.update((400, 413, 415, 422))
        if query:
            statuses.add(422)
        if method == "post":
            # Idempotency-Key: malformed (400), still running (409), reused for another request.
            statuses.update((400, 409, 422))
        if self.if_match:
            statuses.update((412, 428))
        return statuses


# A route no one has described yet (no `Blueprint.operation`): every status it might answer.
_UNDESCRIBED = Operation("", problems=(403, 409))


class Blueprint(flask_smorest.Blueprint):
    def operation(
        self,
        operation_id: str,
        *,
        roles: Iterable[str] = (),
        problems: Iterable[int] = (),
        if_match: bool = False,
        etag: bool = False,
        location: bool = False,
        nationwide: str | None = None,
    ):
        """Name an operation and say what it does beyond its schemas: the roles it admits
        (checked here, after its input is read: 403 for any other), why only a nationwide
        token may call it if so (403 for a regional one), other statuses its domain answers,
        whether it requires If-Match, whether it sets ETag and Location. Put it directly
        above the method."""
        described = Operation(
            operation_id,
            tuple(roles),
            tuple(sorted(set(problems))),
            if_match,
            etag,
            location,
            nationwide,
        )
        unknown = set(described.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"{operation_id} admits unknown roles: {', '.join(sorted(unknown))}.")

        def decorator(func):
            if described.roles:
                func = _admitting(described.roles, func, nationwide=described.nationwide)
            return self.doc(operationId=operation_id, **{_HINTS: described})(func)

        return decorator


def _admitting(roles: tuple[str, ...], func, *, nationwide: str | None = None):
    """`func`, refusing a caller who holds none of `roles`, or (`nationwide`: why) whose token
    is for one region only (403), before it runs."""

    @functools.wraps(func)
    def admitted(*args, **kwargs):
        principal = require_roles(*roles)
        if nationwide is not None and not principal.scope.nationwide:
            raise NotPermitted(f'{nationwide}: it needs a nationwide token (region "*").')
        return func(*args, **kwargs)

    return admitted


class ContractPlugin(BasePlugin):
    """Completes each operation from what it does: its problem responses, the headers it reads
    and sets. Runs after flask-smorest's own plugins, so it sees parameters and bodies."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            if method in METHODS:
                _complete(method, path, operation, operation.pop(_HINTS, _UNDESCRIBED))


def _complete(method: str, path: str, operation: dict, described: Operation) -> None:
    parameters = operation.setdefault("parameters", [])
    query = any(isinstance(p, dict) and p.get("in") == "query" for p in parameters)
    body = "requestBody" in operation
    if described.roles:
        roles = ", ".join(described.roles)
        nationwide = "Nationwide tokens only (region `*`). " if described.nationwide else ""
        operation["description"] = (
            f"{operation.get('description', '')}\n\n{nationwide}Roles: {roles}.".lstrip()
        )
        if described.nationwide:
            operation[NATIONWIDE_EXTENSION] = True
        # The same, for machines: a client (or the access-matrix test) reads who may call what.
        operation[ROLES_EXTENSION] = [role for role in ROLES if role in described.roles]
    responses = operation.setdefault("responses", {})
    for code in list(responses):
        if str(code) == "default" or int(code) >= 400:
            del responses[code]
    success = {
        code: response
        for code, response in responses.items()
        if isinstance(response, dict) and 200 <= int(code) < 300
    }
    for response in success.values():
        headers = response.setdefault("headers", {})
        headers["X-Request-ID"] = "X-Request-ID"
        if described.etag:
            headers["ETag"] = "ETag"
        if described.location:
            headers["Location"] = "Location"
        if method == "post":
            headers["Idempotent-Replayed"] = "Idempotent-Replayed"
    for status in sorted(described.statuses(method, path, body=body, query=query)):
        responses[status] = problem_response(status)
    responses["default"] = UNEXPECTED
    parameters.append("X-Request-ID")
    if described.if_match:
        parameters.append("If-Match")
    if method == "post":
        parameters.append("Idempotency-Key")


def choice_as_component(self, field, ret, **kwargs) -> dict:
    """A `Choice` field as a reference to its named enum component (registered on first use);
    a nullable one as that or null."""
    if not isinstance(field, Choice):
        return {}
    enum = {"type": "string", "enum": list(field.choices)}
    known = self.spec.components.schemas.get(field.component)
    if known is None:
        self.spec.components.schema(field.component, enum)
    elif known != enum:
        raise ValueError(f"Two different enums are named {field.component}.")
    for key in ("type", "enum", "nullable"):
        ret.pop(key, None)
    ref = {"$ref": f"#/components/schemas/{field.component}"}
    if field.allow_none:
        return {"anyOf": [ref, {"type": "string", "nullable": True, "enum": [None]}]}
    # Keywords beside a $ref are ignored in OpenAPI 3.0; keep them beside an allOf instead.
    return {"allOf": [ref]} if ret else ref


def typed_nullable_object(self, field, ret, **kwargs) -> dict:
    """A nullable nested object as `anyOf: [its schema, null]`, so it is read as that schema or
    None (apispec's `anyOf: [{type: object, nullable}, ...]` admits any object first)."""
    branches = ret.get("anyOf")
    if not field.allow_none or not branches:
        return {}
    untyped = {"type": "object", "nullable": True}
    if untyped not in branches:
        return {}
    others = [branch for branch in branches if branch != untyped]
    return {"anyOf": [*others, {**untyped, "enum": [None]}]}


class ContractApi(flask_smorest.Api):
    """flask-smorest's Api documenting the contract: problem+json responses named by status,
    the shared headers and header parameters, named enums and typed nullable objects."""

    DEFAULT_ERROR_RESPONSE_NAME = UNEXPECTED

    def _init_spec(self, *, extra_plugins=None, **kwargs):
        super()._init_spec(extra_plugins=[*(extra_plugins or ()), ContractPlugin()], **kwargs)
        converter = self.ma_plugin.converter
        converter.add_attribute_function(choice_as_component)
        converter.add_attribute_function(typed_nullable_object)

    def _register_responses(self):
        for name, header in HEADERS.items():
            self.spec.components.header(name, header, lazy=True)
        for name, parameter in PARAMETERS.items():
            parameter = {k: v for k, v in parameter.items() if k != "in"}
            self.spec.components.parameter(name, PARAMETERS[name]["in"], parameter, lazy=True)
        for status, description in PROBLEMS.items():
            self._register_problem(problem_response(status), description, status)
        self._register_problem(UNEXPECTED, "Any other error, such as a 500.", None)

    def _register_problem(self, name: str, description: str, status: int | None) -> None:
        headers = ("X-Request-ID", *_PROBLEM_HEADERS.get(status, ()))
        response = {
            "description": description,
            "schema": ProblemSchema,
            "headers": {header: header for header in headers},
        }
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response(name, response, lazy=True)

    def _register_etag_headers(self):
        """flask-smorest's ETag support is not used: ETag and If-Match are documented above."""

    def _register_pagination_header(self):
        """flask-smorest's pagination is not used: a page is a body (`shared.pagination`)."""
