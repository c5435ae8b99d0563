"""Each service's OpenAPI document is the committed contract, and keeps its rules: every
operation named, every status it answers documented as problem+json, every header described,
schemas exact (nullable enums with null, typed nullable objects, PATCH bodies without
defaults, responses as typed as requests) and one shape for one concept across services."""

from __future__ import annotations

import difflib
import http
import re

import pytest

from kube.openapi import committed_path, render
from shared.tokens import ROLES

SERVICES = ("registry", "grants", "notifications")
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def documents(apps) -> dict[str, dict]:
    return {s: apps[s].test_client().get("/openapi.json").json for s in SERVICES}


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(document: dict, node: dict) -> dict:
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = document["components"][kind][name]
    return node


def walk(node):
    """Every schema object in a document (or part of it)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


@pytest.mark.parametrize("service", SERVICES)
def test_the_served_document_is_the_committed_one(documents, service):
    path = committed_path(service)
    served = render(documents[service])
    committed = path.read_text() if path.exists() else ""
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            served.splitlines(keepends=True),
            f"committed {path.name}",
            f"served by {service}",
            n=2,
        )
    )
    assert served == committed, (
        f"The {service} API contract changed. If that is intended, run `make openapi` and "
        f"commit docs/openapi/{service}.json with the change, so it is reviewed:\n" + diff[:6000]
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_has_a_readable_unique_operation_id(documents, service):
    ids = [operation.get("operationId") for _, _, operation in operations(documents[service])]
    assert all(ids) and len(set(ids)) == len(ids), ids
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)+", i) for i in ids), ids


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_documents_its_problems_as_problem_json(documents, service):
    document = documents[service]
    for path, method, operation in operations(document):
        codes = set(operation["responses"])
        where = (method, path)
        assert {"401", "503", "default"} <= codes, where
        if "{" in path:
            assert "404" in codes, where
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= codes, where
        if method == "post":  # Idempotency-Key: malformed, still running, another request
            assert {"400", "409", "422"} <= codes, where
        if any(p.get("in") == "query" for p in operation.get("parameters", [])):
            assert "422" in codes, where
        for code, response in operation["responses"].items():
            if code.startswith(("4", "5")) or code == "default":
                problem = resolve(document, response)
                assert list(problem["content"]) == ["application/problem+json"], where
                schema = problem["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, where


@pytest.mark.parametrize("service", SERVICES)
def test_component_names_do_not_depend_on_the_python_version(documents, service):
    """flask-smorest names responses after http.HTTPStatus, whose names differ between
    Python versions (422 UNPROCESSABLE_ENTITY, later UNPROCESSABLE_CONTENT)."""
    components = documents[service]["components"]
    names = {s.name for s in http.HTTPStatus} | {"DEFAULT_ERROR", "PaginationMetadata"}
    for kind in ("responses", "schemas", "headers", "parameters"):
        assert not names & set(components.get(kind, {})), kind
    assert all(re.fullmatch(r"Problem\d{3}|UnexpectedProblem", n) for n in components["responses"])


@pytest.mark.parametrize("service", SERVICES)
def test_every_header_read_or_set_is_described(documents, service):
    document = documents[service]
    for path, method, operation in operations(document):
        parameters = {resolve(document, p)["name"] for p in operation.get("parameters", [])}
        assert "X-Request-ID" in parameters, (method, path)
        assert ("Idempotency-Key" in parameters) == (method == "post"), (method, path)
        for code, response in operation["responses"].items():
            headers = resolve(document, response).get("headers", {})
            assert "X-Request-ID" in headers, (method, path, code)
            if method == "post" and code.startswith("2"):
                assert "Idempotent-Replayed" in headers, (method, path, code)
    problems = document["components"]["responses"]
    assert "WWW-Authenticate" in problems["Problem401"]["headers"]
    assert "Retry-After" in problems["Problem503"]["headers"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_bearer_operation_names_the_roles_it_admits_in_x_roles(documents, service):
    """`x-roles` is what a client (and tests/shared/test_access_matrix.py) reads to know who
    may call an operation; operations authenticated otherwise (a provider's secret) carry none."""
    document = documents[service]
    for path, method, operation in operations(document):
        where = (method, path)
        if operation.get("security", document["security"]) != [{"bearerAuth": []}]:
            assert "x-roles" not in operation, where
            continue
        roles = operation["x-roles"]
        assert roles and roles == [role for role in ROLES if role in roles], where
        assert operation["description"].endswith("."), where
        stated = operation["description"].rsplit("Roles: ", 1)[1].rstrip(".").split(", ")
        assert sorted(stated) == sorted(roles), where
        # A regional token is refused an operation for nationwide tokens only, whatever its role.
        nationwide = operation.get("x-nationwide", False)
        assert nationwide == ("Nationwide tokens only" in operation["description"]), where
        assert ("403" in operation["responses"]) == (set(roles) != set(ROLES) or nationwide), where


def test_etag_location_and_if_match_are_described_where_they_are_used(documents):
    document = documents["registry"]
    paths = document["paths"]

    def headers(path, method, code):
        return set(paths[path][method]["responses"][code]["headers"])

    group, member = "/api/v1/groups/{group_id}", "/api/v1/groups/{group_id}/members/{member_id}"
    assert {"ETag", "Location"} <= headers("/api/v1/groups", "post", "201")
    assert {"ETag", "Location"} <= headers("/api/v1/groups/{group_id}/members", "post", "201")
    assert "Location" in headers("/api/v1/imports", "post", "202")
    for path, method in [(group, "get"), (group, "patch"), (member, "get"), (member, "patch")]:
        assert "ETag" in headers(path, method, "200"), (method, path)
    for path in (group, member):
        patch = paths[path]["patch"]
        (if_match,) = [
            resolve(document, p)
            for p in patch["parameters"]
            if resolve(document, p)["name"] == "If-Match"
        ]
        assert if_match["in"] == "header" and if_match["required"] is True
        assert {"409", "412", "428"} <= set(patch["responses"])


def test_state_conflicts_are_documented_where_the_state_can_refuse(documents):
    paths = documents["registry"]["paths"]
    member = "/api/v1/groups/{group_id}/members/{member_id}"
    assert "409" in paths[member]["delete"]["responses"]  # a dissolved group's member
    assert {"403", "409"} <= set(paths["/api/v1/groups/{group_id}/status"]["post"]["responses"])
    assert "403" not in paths["/api/v1/groups"]["get"]["responses"]  # every role may list


@pytest.mark.parametrize("service", SERVICES)
def test_nullable_enums_include_null_and_nullable_objects_are_typed(documents, service):
    for node in walk(documents[service]):
        if node.get("nullable") and "enum" in node:
            assert None in node["enum"], node
        for branch in node.get("anyOf", []):
            if branch.get("type") == "object" and branch.get("nullable"):
                assert branch.get("enum") == [None], node  # only null, not any object


def test_patch_bodies_have_no_defaults_and_require_nothing(documents):
    document = documents["registry"]
    patches = [
        resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
        for _, method, operation in operations(document)
        if method == "patch"
    ]
    assert len(patches) == 2
    for schema in patches:
        assert "required" not in schema
        assert not [node for node in walk(schema["properties"]) if "default" in node], schema


def test_response_fields_carry_the_types_enums_and_patterns_of_requests(documents):
    document = documents["registry"]
    schemas = document["components"]["schemas"]
    pairs = [
        ("GroupInput", "GroupDetail"),
        ("GroupPatch", "Group"),
        ("MemberInput", "Member"),
        ("MemberPatch", "MemberFull"),
        ("VisitWrite", "Visit"),
    ]

    def shape(prop: dict) -> tuple:
        prop = {k: v for k, v in prop.items() if k not in ("description", "example", "default")}
        refs = sorted(b["$ref"] for b in walk(prop) if "$ref" in b)
        return prop.get("type"), prop.get("format"), refs, "pattern" in prop

    for request, response in pairs:
        answered = schemas[response]["properties"]
        assert set(schemas[response]["required"]) == set(answered), response
        for name, prop in schemas[request]["properties"].items():
            if name in answered:
                asked, said = shape(prop), shape(answered[name])
                assert asked[:3] == said[:3], (request, response, name)
                assert said[3] or not asked[3], (request, response, name, "pattern")
    member = schemas["Member"]["properties"]
    assert member["nik"]["pattern"] == r"^[0-9]{4}\*{8}[0-9]{4}$"
    assert member["phone"]["pattern"] and member["village_code"]["pattern"]
    assert schemas["MemberRole"]["enum"] == ["ketua", "sekretaris", "bendahara", "anggota"]
    assert schemas["MemberInput"]["properties"]["nik"]["pattern"] == "^[0-9]{16}$"


def test_one_concept_has_one_shape_in_every_document(documents):
    shared = ("GroupStatus", "MemberRole", "Language", "Officer", "Officers", "Problem")
    for name in shared:
        shapes = {
            repr(documents[s]["components"]["schemas"][name])
            for s in SERVICES
            if name in documents[s]["components"]["schemas"]
        }
        assert len(shapes) == 1, name
    registry, grants = (documents[s]["components"]["schemas"] for s in ("registry", "grants"))
    officers = {"$ref": "#/components/schemas/Officers"}
    assert registry["Group"]["properties"]["officers"] == officers
    assert grants["GroupProjection"]["properties"]["officers"] == officers
    status = {"$ref": "#/components/schemas/GroupStatus"}
    assert grants["GroupProjection"]["properties"]["status"] == status
    for service in SERVICES:
        pages = [
            schema
            for name, schema in documents[service]["components"]["schemas"].items()
            if name.endswith("Page")
        ]
        assert pages and all(
            set(p["properties"]) == {"items", "page", "page_size", "total"} for p in pages
        )


def _document_of(blueprint) -> dict:
    from flask import Flask

    from shared.api import ContractApi

    app = Flask("contract-test")
    app.config.update(API_TITLE="t", API_VERSION="v1", OPENAPI_VERSION="3.0.3")
    api = ContractApi(app)
    api.register_blueprint(blueprint)
    return api.spec.to_dict()


def test_a_route_no_one_described_yet_is_documented_with_every_status_it_might_answer():
    import marshmallow as ma
    from flask.views import MethodView

    from shared.api import Blueprint

    blp = Blueprint("things", __name__, url_prefix="/things")

    class Thing(ma.Schema):
        name = ma.fields.String(required=True)

    @blp.route("")
    class Things(MethodView):
        @blp.arguments(Thing)
        @blp.response(201, Thing)
        def post(self, data):
            return data

    operation = _document_of(blp)["paths"]["/things"]["post"]
    assert "operationId" not in operation  # test_every_operation_has_... catches it
    assert {"401", "403", "409", "422", "503", "default"} <= set(operation["responses"])


def test_two_different_enums_cannot_share_a_name():
    import marshmallow as ma
    from flask.views import MethodView

    from shared.api import Blueprint
    from shared.validation import Choice

    blp = Blueprint("colours", __name__, url_prefix="/colours")

    class Paint(ma.Schema):
        inside = Choice("Colour", ("red", "green"))
        outside = Choice("Colour", ("red", "blue"))

    @blp.route("")
    class Colours(MethodView):
        @blp.response(200, Paint)
        @blp.operation("get_paint")
        def get(self):
            return {}

    with pytest.raises(ValueError, match="Colour"):
        _document_of(blp)
