"""What every service's HTTP layer does: problem+json errors, request ids, health, docs."""

from __future__ import annotations

import json
import logging
import os

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from kube.localinfra import free_port
from shared.config import load_settings

SERVICES = ("registry", "grants", "notifications")


@pytest.mark.parametrize("service", SERVICES)
def test_unknown_route_is_a_404_problem(clients, auth, service):
    response = clients[service].get("/api/v1/nothing-here", headers=auth())
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404 and response.json["title"] == "Not Found"


@pytest.mark.parametrize("service", SERVICES)
def test_wrong_method_is_a_405_problem(clients, auth, service):
    response = clients[service].delete("/api/v1/dead-letters", headers=auth())
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_malformed_json_is_a_400_problem(clients, auth):
    response = clients["registry"].post(
        "/api/v1/groups", data="{not json", content_type="application/json", headers=auth()
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_invalid_fields_are_a_422_problem_naming_each_field(clients, auth):
    response = clients["registry"].post(
        "/api/v1/groups", json={"region_code": "64.72", "extra": 1}, headers=auth()
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    fields = {e["field"] for e in response.json["errors"]}
    assert fields == {"name", "region_code", "extra"}


def test_oversized_body_is_a_413_problem(clients, auth, apps):
    limit = apps["registry"].extensions["kube"].settings.max_body_bytes
    response = clients["registry"].post(
        "/api/v1/groups",
        data=b"x" * (limit + 1),
        content_type="application/json",
        headers=auth(),
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_request_id_is_taken_returned_and_logged(clients, auth, caplog):
    with caplog.at_level(logging.INFO, logger="kube.access"):
        response = clients["grants"].get(
            "/api/v1/groups", headers={**auth(), "X-Request-ID": "abc-123"}
        )
    assert response.headers["X-Request-ID"] == "abc-123"
    (record,) = [r for r in caplog.records if r.name == "kube.access"]
    from shared.logs import JsonFormatter

    line = json.loads(JsonFormatter("grants").format(record))
    assert line["request_id"] == "abc-123"
    assert line["status"] == 200 and line["path"] == "/api/v1/groups"


def test_request_id_is_created_when_missing_or_unsafe(clients):
    generated = clients["registry"].get("/healthz")
    assert len(generated.headers["X-Request-ID"]) == 32
    unsafe = clients["registry"].get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert unsafe.headers["X-Request-ID"] != "bad id <script>"


def test_personal_data_is_masked_in_log_lines():
    from shared.logs import mask_personal_data

    line = mask_personal_data("nik=6472015507900003 phone=+6281234567890 kk 6472010101010001")
    assert "6472015507900003" not in line and "6472********0003" in line
    assert "81234567890" not in line and line.count("890") == 1


def test_our_log_set_up_leaves_the_process_id_to_other_handlers_formats():
    """gunicorn formats its own lines with `%(process)d`: configuring our JSON lines must not
    stop records from carrying the process id (a record without it broke every such line)."""
    from shared.logs import configure_logging

    configure_logging("registry")
    record = logging.getLogger("gunicorn.error").makeRecord(
        "gunicorn.error", logging.INFO, __file__, 1, "Booting worker", None, None
    )
    line = logging.Formatter("[%(process)d] [%(processName)s] %(message)s").format(record)
    assert line == f"[{os.getpid()}] [MainProcess] Booting worker"


@pytest.mark.parametrize(
    "line",
    [
        "no digits at all",
        "123456789 and 987654321: nine in a row, twice",
        "exactly ten: 0123456789",
        "an id 9f86d081884c7d659a2feaa0c55ad015 and a time 2026-11-29T22:55:12.123",
        "nik 6472015507900003 beside a name, Siti Aminah",
        "non-ASCII name Sri Rahayu Ñ with nik 6472015507900003",
        "Arabic-Indic digits, which \\d also matches: \u0666\u0664\u0667\u0662\u0660\u0661"
        "\u0665\u0665\u0660\u0667\u0669\u0660\u0660\u0660\u0660\u0663",
    ],
)
def test_the_log_masks_quick_look_for_ten_digits_agrees_with_the_pattern_on_examples(line):
    from shared.logs import _TEN_DIGITS, _may_hold_ten_digits, mask_personal_data

    assert _may_hold_ten_digits(line) == (_TEN_DIGITS.search(line) is not None)
    if _TEN_DIGITS.search(line) is not None and "6472015507900003" in line:
        assert "6472015507900003" not in mask_personal_data(line)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            # Runs of digits around ten long, some in another script's digits, between text.
            st.text(alphabet="0123456789\u0666", min_size=7, max_size=12),
            st.text(alphabet="a-: \u00d1", max_size=3),
        ),
        max_size=6,
    )
)
def test_the_log_masks_quick_look_for_ten_digits_agrees_with_the_pattern(parts):
    from shared.logs import _TEN_DIGITS, _may_hold_ten_digits

    line = "".join(parts)
    assert _may_hold_ten_digits(line) == (_TEN_DIGITS.search(line) is not None)


@pytest.mark.parametrize("service", SERVICES)
def test_health_and_readiness_answer_without_a_token(clients, service):
    assert clients[service].get("/healthz").json["status"] == "ok"
    ready = clients[service].get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"] == {"database": "ok", "redis": "ok"}


def test_readiness_names_the_dependency_that_failed(platform_env):
    from services.notifications import create_app

    app = create_app(load_settings("notifications", redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"].startswith("error")
    assert "redis" in response.json["detail"]
    app.extensions["kube"].db.dispose()


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_document_and_docs_page_are_served(clients, service):
    spec = clients[service].get("/openapi.json")
    assert spec.status_code == 200
    assert spec.json["openapi"].startswith("3.")
    assert "bearerAuth" in spec.json["components"]["securitySchemes"]
    assert any(path.startswith("/api/v1/") for path in spec.json["paths"])
    docs = clients[service].get("/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()


@pytest.mark.parametrize(
    ("service", "port"), [("registry", 5001), ("grants", 5002), ("notifications", 5003)]
)
def test_default_ports_can_be_changed(service, port):
    from kube.catalogue import BY_NAME
    from kube.localrun import port_of

    assert port_of(BY_NAME[service], {}) == port
    assert port_of(BY_NAME[service], {f"{service.upper()}_PORT": "6100"}) == 6100


def test_log_lines_drop_task_arguments_and_keep_fractions():
    from shared.logs import JsonFormatter

    record = logging.makeLogRecord(
        {
            "msg": "Task succeeded in 0.06790000000009423s",
            "levelname": "INFO",
            "data": {"id": "t1", "args": "[{'phone': '+6281234567890'}]"},
        }
    )
    line = json.loads(JsonFormatter("grants").format(record))
    assert line["message"] == "Task succeeded in 0.06790000000009423s"
    assert line["data"] == {"id": "t1"}


def test_a_service_without_any_token_key_refuses_to_start(platform_env):
    from services.grants import create_app

    with pytest.raises(RuntimeError, match="KUBE_JWT_SECRET"):
        create_app(load_settings("grants", jwt_secret=None, jwt_public_key=None))


@pytest.mark.parametrize("service", SERVICES)
def test_docs_work_offline_from_the_installed_swagger_ui(clients, service):
    page = clients[service].get("/docs").get_data(as_text=True)
    assert "cdn" not in page and "/docs/assets/swagger-ui-bundle.js" in page
    script = clients[service].get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.data) > 100_000


@pytest.mark.parametrize("bad", ["KUBE\x00Tempe", "KUBE \ud800 Tempe"])
def test_text_postgresql_cannot_store_is_a_422_naming_the_field(clients, auth, bad):
    response = clients["registry"].post(
        "/api/v1/groups",
        data=json.dumps({"name": bad, "region_code": "6472011001", "address": bad}),
        content_type="application/json",
        headers=auth("pendamping", region="6472"),
    )
    assert response.status_code == 422, response.json
    assert {e["field"] for e in response.json["errors"]} == {"name", "address"}


def test_nested_fields_and_query_parameters_are_checked_for_unstorable_text(clients, auth):
    body = {
        "name": "KUBE Tempe",
        "region_code": "6472011001",
        "bank_account": {"bank_name": "BRI\x00", "account_number": "1234567890"},
    }
    nested = clients["registry"].post("/api/v1/groups", json=body, headers=auth())
    assert nested.status_code == 422
    assert "bank_account.bank_name" in {e["field"] for e in nested.json["errors"]}
    query = clients["registry"].get("/api/v1/groups?q=tem%00pe", headers=auth())
    assert query.status_code == 422
    assert [e["field"] for e in query.json["errors"]] == ["q"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/v1/groups", "text/plain"), ("/api/v1/imports", "application/json")],
)
def test_a_body_in_a_format_the_route_does_not_read_is_a_415_problem(
    clients, auth, path, content_type
):
    response = clients["registry"].post(
        path, data=b'{"name": "x"}', content_type=content_type, headers=auth()
    )
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"
    assert content_type in response.json["detail"]


def test_json_nested_deeper_than_the_parser_goes_is_a_400_problem(clients, auth):
    body = "[" * 100_000 + "]" * 100_000
    response = clients["registry"].post(
        "/api/v1/groups", data=body, content_type="application/json", headers=auth()
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


def test_api_answers_are_never_cached_and_never_sniffed(clients, auth):
    response = clients["registry"].get("/api/v1/groups", headers=auth())
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_failed_statement_never_shows_its_parameters(apps):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    db = apps["registry"].extensions["kube"].db
    with pytest.raises(DBAPIError) as raised, db.transaction() as session:
        session.execute(
            text("INSERT INTO groups (id, name) VALUES (:id, :name)"),
            {"id": "not-a-uuid", "name": "Siti Aminah 1987-03-04"},
        )
    assert "Siti Aminah" not in str(raised.value)
    assert "hide_parameters" in str(raised.value)
