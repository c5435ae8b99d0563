"""The HTTP SMS gateway client and the failover, against real local HTTP servers."""

from __future__ import annotations

import json
import pickle
import threading
import time

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from services.notifications.providers import (
    PermanentProviderError,
    SendResult,
    SmsClient,
    TransientProviderError,
    mask_number,
)
from services.notifications.providers.failover import FailoverSms
from services.notifications.providers.http_sms import (
    GatewayConfig,
    HttpSms,
    format_number,
    json_path,
    userkey_gateway,
)

NUMBER = "+6281234567890"
TEXT = "Bantuan UEP KUBE Maju Jaya telah cair: Rp 20.000.000."


def _server():
    server = HTTPServer(threaded=True)
    server.start()
    return server


@pytest.fixture(scope="module")
def _servers():
    started = [_server(), _server()]
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def gateway(_servers):
    server = _servers[0]
    yield server
    server.clear()


@pytest.fixture
def second_gateway(_servers):
    server = _servers[1]
    yield server
    server.clear()


class Recorder:
    """A handler that keeps each request it answers."""

    def __init__(self, response: Response | None = None, delay: float = 0.0):
        self.response = response or Response(json.dumps({"status": "1", "messageId": "m-1"}))
        self.delay = delay
        self.requests: list[dict] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "args": request.args.to_dict(),
                "form": request.form.to_dict(),
                "json": request.get_json(silent=True),
                "content_type": request.mimetype,
                "headers": dict(request.headers),
            }
        )
        if self.delay:
            time.sleep(self.delay)
        return self.response


def answer(server: HTTPServer, response: Response | None = None, delay: float = 0.0) -> Recorder:
    recorder = Recorder(response, delay)
    server.expect_request("/sms").respond_with_handler(recorder)
    return recorder


def client(server: HTTPServer, **options) -> HttpSms:
    return HttpSms(GatewayConfig(url=server.url_for("/sms")).with_options(options))


def json_response(document, status=200) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")


def test_clients_satisfy_the_sms_protocol(gateway):
    primary = client(gateway)
    assert isinstance(primary, SmsClient)
    assert isinstance(FailoverSms(primary, primary, name="both"), SmsClient)


def test_delivered_with_the_gateways_message_id(gateway):
    recorder = answer(gateway, json_response({"result": {"messages": [{"id": "abc-123"}]}}))
    sms = client(gateway, message_id_field="result.messages.0.id", reference_param="ref")

    result = sms.send_sms(NUMBER, TEXT, "notif-1")

    assert result == SendResult("sms-gateway", "abc-123")
    [request] = recorder.requests
    assert request["method"] == "POST"
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {"to": NUMBER, "message": TEXT, "ref": "notif-1"}


def test_the_userkey_preset_sends_exactly_the_zenziva_style_request(gateway):
    recorder = answer(
        gateway,
        json_response(
            {"messageId": "77001", "to": "081234567890", "status": "1", "text": "Success"}
        ),
    )
    sms = HttpSms(userkey_gateway(gateway.url_for("/sms"), "uk-dinsos", "pk-secret"))

    assert sms.send_sms(NUMBER, TEXT, "notif-2") == SendResult("sms-gateway", "77001")

    [request] = recorder.requests
    assert (request["method"], request["path"], request["args"]) == ("POST", "/sms", {})
    assert request["content_type"] == "application/x-www-form-urlencoded"
    assert request["form"] == {
        "userkey": "uk-dinsos",
        "passkey": "pk-secret",
        "to": "081234567890",
        "message": TEXT,
    }


def test_the_userkey_preset_reads_a_rejection_as_permanent_with_the_gateways_words(gateway):
    answer(gateway, json_response({"status": "0", "text": "Nomor tujuan tidak valid"}))
    sms = HttpSms(userkey_gateway(gateway.url_for("/sms"), "uk", "pk-secret"))

    with pytest.raises(PermanentProviderError) as raised:
        sms.send_sms(NUMBER, TEXT, "notif-3")

    assert raised.value.reason == "rejected: Nomor tujuan tidak valid"
    assert raised.value.provider == "sms-gateway"


def test_get_with_query_parameters_extra_params_and_header_auth(gateway):
    recorder = answer(gateway, Response("OK;id=Q-42", mimetype="text/plain"))
    sms = client(
        gateway,
        method="GET",
        placement="query",
        number_param="msisdn",
        text_param="pesan",
        number_format="international",
        params={"sender": "DINSOS", "route": "premium"},
        headers={"Authorization": "Bearer tok-1"},
        success_regex=r"^OK",
        message_id_regex=r"id=(\S+)",
    )

    assert sms.send_sms(NUMBER, TEXT, "r") == SendResult("sms-gateway", "Q-42")

    [request] = recorder.requests
    assert request["method"] == "GET"
    assert request["args"] == {
        "sender": "DINSOS",
        "route": "premium",
        "msisdn": "6281234567890",
        "pesan": TEXT,
    }
    assert request["headers"]["Authorization"] == "Bearer tok-1"


def test_json_body_placement(gateway):
    recorder = answer(gateway, json_response({"ok": True, "id": 9}))
    sms = client(
        gateway,
        placement="json",
        success_field="ok",
        success_values=("true",),
        message_id_field="id",
        keys={"api_key": "k"},
    )

    assert sms.send_sms(NUMBER, TEXT, "r") == SendResult("sms-gateway", "9")
    assert recorder.requests[0]["json"] == {"api_key": "k", "to": NUMBER, "message": TEXT}


def test_plain_2xx_without_rules_is_delivered_without_an_id(gateway):
    answer(gateway, Response("queued"))
    assert client(gateway).send_sms(NUMBER, TEXT, "r") == SendResult("sms-gateway", None)


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408, 401])
def test_server_errors_and_throttling_are_transient(gateway, status):
    answer(gateway, Response("busy", status=status))
    with pytest.raises(TransientProviderError) as raised:
        client(gateway).send_sms(NUMBER, TEXT, "r")
    assert raised.value.status == status
    assert raised.value.reason == f"HTTP {status}"


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_other_4xx_are_permanent(gateway, status):
    answer(gateway, Response("bad request", status=status))
    with pytest.raises(PermanentProviderError) as raised:
        client(gateway).send_sms(NUMBER, TEXT, "r")
    assert raised.value.status == status


def test_a_gateway_slower_than_the_timeout_is_transient(gateway):
    recorder = answer(gateway, delay=3.0)
    with pytest.raises(TransientProviderError) as raised:
        client(gateway, timeout=0.5).send_sms(NUMBER, TEXT, "r")
    # The reason comes only from the client's own timeout firing.
    assert raised.value.reason == "no answer within 0.5s"
    assert raised.value.status is None
    assert len(recorder.requests) == 1


def test_nothing_listening_is_transient(closed_port):
    with pytest.raises(TransientProviderError) as raised:
        HttpSms(GatewayConfig(url=f"http://127.0.0.1:{closed_port}/sms", timeout=5)).send_sms(
            NUMBER, TEXT, "r"
        )
    assert raised.value.reason.startswith("connection failed")


def test_a_2xx_that_is_not_json_when_json_is_expected_is_transient(gateway):
    answer(gateway, Response("<html>maintenance</html>"))
    with pytest.raises(TransientProviderError):
        client(gateway, success_field="status", success_values=("1",)).send_sms(NUMBER, TEXT, "r")


def test_a_body_that_fails_the_success_regex_is_permanent(gateway):
    answer(gateway, Response("ERR: saldo habis"))
    with pytest.raises(PermanentProviderError) as raised:
        client(gateway, success_regex="^OK").send_sms(NUMBER, TEXT, "r")
    assert raised.value.reason == "rejected: ERR: saldo habis"


def test_reasons_never_carry_the_number_or_the_keys(gateway):
    answer(
        gateway,
        Response("invalid to=081234567890 (+6281234567890) for userkey uk-9 passkey pk-9", 400),
    )
    sms = HttpSms(userkey_gateway(gateway.url_for("/sms"), "uk-9", "pk-9"))
    with pytest.raises(PermanentProviderError) as raised:
        sms.send_sms(NUMBER, TEXT, "r")
    text = str(raised.value)
    for secret in ("081234567890", "6281234567890", "uk-9", "pk-9", "1234567"):
        assert secret not in text
    assert text.startswith("sms-gateway: HTTP 400: invalid to=")


def test_reasons_never_carry_a_foreign_number_either(gateway):
    answer(gateway, Response("blocked destination 6591234567 / +6591234567", 403))
    with pytest.raises(PermanentProviderError) as raised:
        client(gateway).send_sms("+6591234567", TEXT, "r")
    assert raised.value.reason == "HTTP 403: blocked destination +65****4567 / +65****4567"


def test_a_number_that_is_not_e164_is_permanent_without_a_request(gateway):
    recorder = answer(gateway)
    with pytest.raises(PermanentProviderError) as raised:
        client(gateway).send_sms("081234567890", TEXT, "r")
    assert raised.value.reason.startswith("not an E.164 number")
    assert "081234567890" not in str(raised.value)
    assert recorder.requests == []


def test_errors_survive_pickling_with_their_fields():
    # Our own bytes, just made: the way Celery and multiprocessing carry errors.
    carried = pickle.dumps(TransientProviderError("gw", "HTTP 503", status=503))
    error = pickle.loads(carried)  # noqa: S301
    assert (type(error), error.provider, error.reason, error.status) == (
        TransientProviderError,
        "gw",
        "HTTP 503",
        503,
    )


# --- failover ------------------------------------------------------------------------------


def test_failover_carries_the_message_when_the_primary_answers_500(gateway, second_gateway):
    first = answer(gateway, Response("down", status=500))
    second = answer(second_gateway, json_response({"status": "1", "messageId": "s-1"}))
    sms = FailoverSms(
        client(gateway, name="primary"),
        client(second_gateway, name="secondary", message_id_field="messageId"),
    )

    assert sms.send_sms(NUMBER, TEXT, "r") == SendResult("secondary", "s-1")
    assert len(first.requests) == len(second.requests) == 1


def test_failover_uses_only_the_primary_when_it_delivers(gateway, second_gateway):
    answer(gateway, json_response({"messageId": "p-1"}))
    second = answer(second_gateway)
    sms = FailoverSms(
        client(gateway, name="primary", message_id_field="messageId"),
        client(second_gateway, name="secondary"),
    )
    assert sms.send_sms(NUMBER, TEXT, "r") == SendResult("primary", "p-1")
    assert second.requests == []


def test_failover_never_retries_a_permanent_failure_on_the_secondary(gateway, second_gateway):
    answer(gateway, Response("invalid number", status=400))
    second = answer(second_gateway)
    sms = FailoverSms(client(gateway, name="primary"), client(second_gateway, name="secondary"))

    with pytest.raises(PermanentProviderError) as raised:
        sms.send_sms(NUMBER, TEXT, "r")

    assert raised.value.provider == "primary"
    assert second.requests == []


def test_failover_when_both_fail_transiently_names_both(gateway, second_gateway):
    answer(gateway, Response("down", status=503))
    answer(second_gateway, Response("slow down", status=429))
    sms = FailoverSms(client(gateway, name="primary"), client(second_gateway, name="secondary"))

    with pytest.raises(TransientProviderError) as raised:
        sms.send_sms(NUMBER, TEXT, "r")

    assert raised.value.provider == "secondary"
    assert raised.value.status == 429
    assert raised.value.reason == "HTTP 429 (after primary: HTTP 503)"


def test_one_client_sends_from_many_threads(gateway):
    recorder = answer(gateway, json_response({"status": "1", "messageId": "t"}))
    sms = HttpSms(userkey_gateway(gateway.url_for("/sms"), "uk", "pk"))
    errors = []

    def send(i):
        try:
            sms.send_sms(f"+62812345678{i:02d}", TEXT, f"r{i}")
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(r["form"]["to"] for r in recorder.requests) == [
        f"0812345678{i:02d}" for i in range(20)
    ]


# --- pure helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, expected",
    [("e164", NUMBER), ("national", "081234567890"), ("international", "6281234567890")],
)
def test_number_formats(fmt, expected):
    assert format_number(NUMBER, fmt) == expected


def test_the_national_format_needs_an_indonesian_number():
    with pytest.raises(ValueError, match="national"):
        format_number("+6591234567", "national")


def test_json_path_reads_keys_and_indices_and_misses_quietly():
    document = {"a": [{"b": 1}, {"b": 2}]}
    assert json_path(document, "a.1.b") == 2
    assert json_path(document, "a.-1.b") == 2
    assert json_path(document, "a.2.b") is None
    assert json_path(document, "a.x") is None
    assert json_path(None, "a") is None


def test_mask_number_keeps_the_prefix_and_last_four():
    assert mask_number(NUMBER) == "+62812****7890"
    assert mask_number("+62812345678901") == "+62812*****8901"
    # Short numbers keep less of their head, never fewer than four digits hidden.
    assert mask_number("+6591234567") == "+65****4567"
    assert mask_number("+628123") == "*******"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "PUT"}, "method"),
        ({"method": "GET", "placement": "form"}, "GET"),
        ({"placement": "xml"}, "placement"),
        ({"number_format": "local"}, "number_format"),
        ({"timeout": 0}, "timeout"),
        ({"success_field": "status"}, "success_values"),
        ({"success_regex": "("}, "success_regex"),
        ({"url": "ftp://x"}, "url"),
        ({"colour": "red"}, "unknown option"),
    ],
)
def test_a_wrong_gateway_configuration_says_what_is_wrong(options, message):
    with pytest.raises(ValueError, match=message):
        GatewayConfig(url="https://sms.example/api").with_options(options)


def test_a_proxy_in_the_environment_carries_the_requests(gateway, monkeypatch):
    # An office that reaches its gateway through a proxy: the client reads the proxy once,
    # when it is made, and sends every SMS through it.
    recorder = answer(gateway)
    monkeypatch.setenv("HTTP_PROXY", gateway.url_for("/").rstrip("/"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    sms = HttpSms(GatewayConfig(url="http://sms-gateway.invalid/sms"))
    monkeypatch.delenv("HTTP_PROXY")
    sms.send_sms(NUMBER, TEXT, "ref-1")
    assert len(recorder.requests) == 1
    assert recorder.requests[0]["headers"]["Host"] == "sms-gateway.invalid"


def test_no_proxy_leaves_the_gateway_direct(gateway, monkeypatch):
    recorder = answer(gateway)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    client(gateway).send_sms(NUMBER, TEXT, "ref-2")
    assert len(recorder.requests) == 1
