"""kube-client's HTTP behaviour against a real local HTTP server (pytest-httpserver): retries
and Retry-After, Idempotency-Key reuse, the token provider, problem parsing and lazy pages.
The client's `sleep` hook records each wait instead of sleeping it."""

from __future__ import annotations

import json
import time

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Response

from kube.localinfra import free_port
from kube_client import (
    Conflict,
    KubeClient,
    ProblemError,
    ServiceUnavailable,
    TransportError,
    ValidationFailed,
    __version__,
)

PROBLEM = "application/problem+json"


def unavailable(retry_after: str | None = None) -> tuple[str, int, dict]:
    headers = {"Content-Type": PROBLEM, **({"Retry-After": retry_after} if retry_after else {})}
    body = {"type": "about:blank", "title": "Service Unavailable", "status": 503}
    return json.dumps(body), 503, headers


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(httpserver: HTTPServer, waits) -> KubeClient:
    base = httpserver.url_for("").rstrip("/")
    made = KubeClient(registry=base, grants=base, token="t0ken", sleep=waits.append, timeout=5)
    yield made
    made.close()


def sent(httpserver: HTTPServer, path: str) -> list:
    return [request for request, _ in httpserver.log if request.path == path]


def test_a_get_answered_503_is_retried_after_its_retry_after(httpserver, client, waits):
    data, status, headers = unavailable(retry_after="2")
    httpserver.expect_ordered_request("/api/v1/groups/g1").respond_with_data(data, status, headers)
    httpserver.expect_ordered_request("/api/v1/groups/g1").respond_with_json({"id": "g1"})

    assert client.registry.get_group("g1") == {"id": "g1"}
    assert waits == [2.0]
    assert len(sent(httpserver, "/api/v1/groups/g1")) == 2


def test_a_long_retry_after_is_capped(httpserver, waits):
    data, status, headers = unavailable(retry_after="3600")
    httpserver.expect_ordered_request("/api/v1/groups/g1").respond_with_data(data, status, headers)
    httpserver.expect_ordered_request("/api/v1/groups/g1").respond_with_json({"id": "g1"})
    base = httpserver.url_for("").rstrip("/")
    with KubeClient(registry=base, token="t", max_retry_after=7, sleep=waits.append) as client:
        client.registry.get_group("g1")
    assert waits == [7]


def test_503_without_retry_after_backs_off_exponentially_within_the_cap(httpserver, waits):
    data, status, headers = unavailable()
    httpserver.expect_request("/api/v1/groups/g1").respond_with_data(data, status, headers)
    base = httpserver.url_for("").rstrip("/")
    client = KubeClient(
        registry=base, token="t", max_retries=4, backoff=1, max_backoff=3, sleep=waits.append
    )
    with pytest.raises(ServiceUnavailable) as raised:
        client.registry.get_group("g1")
    assert raised.value.status == 503
    assert len(sent(httpserver, "/api/v1/groups/g1")) == 5
    # Each wait is between half and all of min(cap, backoff * 2**attempt).
    for attempt, wait in enumerate(waits):
        ceiling = min(3, 1 * 2**attempt)
        assert ceiling / 2 <= wait <= ceiling


def test_a_plain_post_answered_503_is_not_sent_again(httpserver, client, waits):
    httpserver.expect_request("/api/v1/members/search", method="POST").respond_with_data(
        *unavailable(retry_after="1")
    )
    with pytest.raises(ServiceUnavailable):
        client.request("registry", "POST", "/api/v1/members/search", json={"nik": "1" * 16})
    assert len(sent(httpserver, "/api/v1/members/search")) == 1
    assert waits == []


def test_a_creating_post_is_retried_under_the_same_idempotency_key(httpserver, client, waits):
    httpserver.expect_ordered_request("/api/v1/groups", method="POST").respond_with_data(
        *unavailable(retry_after="1")
    )
    httpserver.expect_ordered_request("/api/v1/groups", method="POST").respond_with_json(
        {"id": "g1", "status": "draft"}, status=201
    )
    group = client.registry.create_group(name="KUBE Maju", region_code="6472011001")

    assert group["id"] == "g1"
    keys = [r.headers.get("Idempotency-Key") for r in sent(httpserver, "/api/v1/groups")]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    # Optional fields left out are not sent at all.
    assert json.loads(sent(httpserver, "/api/v1/groups")[0].data) == {
        "name": "KUBE Maju",
        "region_code": "6472011001",
    }
    # The next logical call gets a key of its own.
    httpserver.expect_request("/api/v1/groups", method="POST").respond_with_json({}, status=201)
    client.registry.create_group(name="KUBE Lain", region_code="6472011001")
    assert sent(httpserver, "/api/v1/groups")[-1].headers["Idempotency-Key"] != keys[0]


def test_a_connection_refused_is_retried_until_the_server_is_up(waits):
    """The first attempts find nothing listening; the server starts during the client's
    backoff, and the retry gets the answer."""
    port = free_port()
    server = HTTPServer(host="127.0.0.1", port=port)
    server.expect_request("/api/v1/grants/x1").respond_with_json({"id": "x1"})

    def start_on_second_wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            server.start()

    client = KubeClient(grants=f"http://127.0.0.1:{port}", token="t", sleep=start_on_second_wait)
    try:
        assert client.grants.get_grant("x1") == {"id": "x1"}
    finally:
        if server.is_running():
            server.stop()
    assert len(waits) == 2


def test_no_server_at_all_is_a_transport_error_after_the_retries(waits):
    client = KubeClient(registry=f"http://127.0.0.1:{free_port()}", token="t", max_retries=2)
    client.transport.sleep = waits.append
    with pytest.raises(TransportError):
        client.registry.get_group("g1")
    assert len(waits) == 2


def test_a_plain_post_whose_answer_timed_out_is_not_sent_again(httpserver, waits):
    """A read timeout means the request may have reached the service: no second copy."""
    arrived = []

    def slow(request):
        arrived.append(request.path)
        time.sleep(0.6)
        return Response("{}", status=200, content_type="application/json")

    httpserver.expect_request("/api/v1/slow", method="POST").respond_with_handler(slow)
    base = httpserver.url_for("").rstrip("/")
    client = KubeClient(registry=base, token="t", timeout=0.2, sleep=waits.append)
    with pytest.raises(TransportError):
        client.request("registry", "POST", "/api/v1/slow", json={})
    assert waits == []
    assert arrived == ["/api/v1/slow"]


def test_the_token_provider_is_asked_for_every_request_retries_included(httpserver, waits):
    tokens = iter(f"token-{n}" for n in range(100))
    asked = []

    def provider() -> str:
        asked.append(next(tokens))
        return asked[-1]

    httpserver.expect_ordered_request("/api/v1/groups/g1").respond_with_data(
        *unavailable(retry_after="0")
    )
    httpserver.expect_request("/api/v1/groups/g1").respond_with_json({"id": "g1"})
    base = httpserver.url_for("").rstrip("/")
    client = KubeClient(registry=base, token_provider=provider, sleep=waits.append)
    client.registry.get_group("g1")
    client.registry.get_group("g1")

    assert asked == ["token-0", "token-1", "token-2"]
    sent_tokens = [r.headers["Authorization"] for r in sent(httpserver, "/api/v1/groups/g1")]
    assert sent_tokens == [f"Bearer {t}" for t in asked]
    assert sent(httpserver, "/api/v1/groups/g1")[0].headers["User-Agent"] == (
        f"kube-client/{__version__}"
    )


def test_token_and_token_provider_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        KubeClient(registry="http://127.0.0.1:1", token="a", token_provider=lambda: "b")


def test_a_422_problem_is_validation_failed_with_each_field(httpserver, client):
    problem = {
        "type": "about:blank",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "Some fields are invalid.",
        "errors": [
            {"field": "name", "message": "Shorter than minimum length 3."},
            {"field": "region_code", "message": "Not a village code."},
            {"field": "region_code", "message": "Not in your region."},
        ],
    }
    httpserver.expect_request("/api/v1/groups", method="POST").respond_with_data(
        json.dumps(problem), 422, content_type=PROBLEM
    )
    with pytest.raises(ValidationFailed) as raised:
        client.registry.create_group(name="K", region_code="x")
    error = raised.value
    assert (error.status, error.title, error.detail) == (
        422,
        "Unprocessable Entity",
        problem["detail"],
    )
    assert error.errors == {
        "name": ["Shorter than minimum length 3."],
        "region_code": ["Not a village code.", "Not in your region."],
    }
    assert error.body == problem


def test_failed_guards_are_named_in_a_409(httpserver, client):
    problem = {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "errors": [
            {"guard": "group_active", "message": "The group is not active.", "message_id": "-"},
            {"guard": "member_count", "message": "Too few members.", "message_id": "-"},
        ],
    }
    httpserver.expect_request("/api/v1/grants/x1/transitions", method="POST").respond_with_data(
        json.dumps(problem), 409, content_type=PROBLEM
    )
    with pytest.raises(Conflict) as raised:
        client.grants.transition("x1", "submit", version=3)
    assert raised.value.guards == ["group_active", "member_count"]
    assert set(raised.value.errors) == {"group_active", "member_count"}
    request = sent(httpserver, "/api/v1/grants/x1/transitions")[0]
    assert request.headers["If-Match"] == '"3"'
    assert json.loads(request.data) == {"action": "submit"}


def test_a_change_without_version_reads_the_etag_first(httpserver, client):
    httpserver.expect_request("/api/v1/grants/x1", method="GET").respond_with_json(
        {"id": "x1", "version": 4}, headers={"ETag": '"4"'}
    )
    httpserver.expect_request("/api/v1/grants/x1/transitions", method="POST").respond_with_json(
        {"id": "x1", "version": 5}
    )
    assert client.grants.transition("x1", "verify", data={"minutes_number": "BA-1"})["version"] == 5
    assert sent(httpserver, "/api/v1/grants/x1/transitions")[0].headers["If-Match"] == '"4"'


def test_an_error_that_is_not_a_problem_still_raises_what_is_known(httpserver, client):
    httpserver.expect_request("/api/v1/groups/g1").respond_with_data(
        "<html>upstream down</html>", 502, content_type="text/html"
    )
    with pytest.raises(ProblemError) as raised:
        client.registry.get_group("g1")
    error = raised.value
    assert type(error) is ProblemError
    assert error.status == 502
    assert error.title.lower() == "bad gateway"
    assert "upstream down" in error.detail
    assert error.errors == {}
    assert error.body["status"] == 502


def test_pages_are_fetched_lazily_until_the_total(httpserver, client):
    for page, items in ((1, [1, 2]), (2, [3, 4]), (3, [5])):
        httpserver.expect_request(
            "/api/v1/programs", query_string={"page": str(page), "page_size": "2"}
        ).respond_with_json({"items": items, "page": page, "page_size": 2, "total": 5})

    programs = client.grants.iter_programs(page_size=2)
    assert sent(httpserver, "/api/v1/programs") == []
    assert next(programs) == 1
    assert len(sent(httpserver, "/api/v1/programs")) == 1
    assert list(programs) == [2, 3, 4, 5]
    assert len(sent(httpserver, "/api/v1/programs")) == 3


def test_a_custom_session_carries_the_calls(httpserver):
    session = requests.Session()
    session.headers["X-Request-ID"] = "from-my-app"
    httpserver.expect_request("/api/v1/groups/g1").respond_with_json({"id": "g1"})
    base = httpserver.url_for("").rstrip("/")
    KubeClient(registry=base, token="t", session=session).registry.get_group("g1")
    assert sent(httpserver, "/api/v1/groups/g1")[0].headers["X-Request-ID"] == "from-my-app"


def test_a_service_without_a_base_url_cannot_be_called():
    with pytest.raises(ValueError, match="notifications"):
        KubeClient(registry="http://127.0.0.1:1", token="t").notifications.get_message("m1")


def test_a_copy_calls_the_same_services_with_the_same_token_on_its_own_session(httpserver, client):
    httpserver.expect_request("/api/v1/groups/g1", method="GET").respond_with_json({"id": "g1"})
    with client.copy() as copy:
        assert copy.transport.session is not client.transport.session
        assert copy.registry.get_group("g1") == {"id": "g1"}
    # Closing the copy leaves the original working.
    assert client.registry.get_group("g1") == {"id": "g1"}
    first, second = sent(httpserver, "/api/v1/groups/g1")
    assert first.headers["Authorization"] == second.headers["Authorization"]
    assert first.headers["Authorization"] == "Bearer t0ken"
