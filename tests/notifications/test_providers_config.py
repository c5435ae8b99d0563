"""Provider clients built from environment variables, and the errors that name a variable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from werkzeug import Request, Response

from services.notifications.providers import SendResult
from services.notifications.providers.config import (
    ProviderConfigError,
    email_client_from_env,
    providers_from_env,
    sms_client_from_env,
)
from services.notifications.providers.failover import FailoverSms
from services.notifications.providers.http_sms import HttpSms
from services.notifications.providers.local import FileSms
from services.notifications.providers.ratelimit import Rate
from services.notifications.providers.smtp import SmtpEmail

GATEWAY = {
    "SMS_GATEWAY_URL": "https://sms.example.id/api/sendsms/",
    "SMS_GATEWAY_USERKEY": "uk",
    "SMS_GATEWAY_PASSKEY": "pk",
}
SMTP = {"SMTP_HOST": "mail.example.go.id", "SMTP_SENDER": "noreply@example.go.id"}


def test_the_userkey_preset_needs_only_url_and_keys():
    sms = sms_client_from_env(GATEWAY)
    assert isinstance(sms, HttpSms)
    config = sms.config
    assert (config.name, config.method, config.placement) == ("sms-gateway", "POST", "form")
    assert config.keys == {"userkey": "uk", "passkey": "pk"}
    assert (config.number_param, config.text_param, config.number_format) == (
        "to",
        "message",
        "national",
    )
    assert (config.success_field, config.success_values) == ("status", ("1",))
    assert config.message_id_field == "messageId"


def test_three_variables_make_a_client_that_sends_the_userkey_request(httpserver):
    received = []

    def record(request: Request) -> Response:
        received.append((request.method, request.args.to_dict(), request.form.to_dict()))
        return Response(json.dumps({"messageId": "77001", "status": "1", "text": "Success"}))

    httpserver.expect_request("/api/sendsms/").respond_with_handler(record)
    sms = sms_client_from_env(
        {
            "SMS_GATEWAY_URL": httpserver.url_for("/api/sendsms/"),
            "SMS_GATEWAY_USERKEY": "uk-dinsos",
            "SMS_GATEWAY_PASSKEY": "pk-secret",
        }
    )

    assert sms.send_sms("+6281234567890", "Halo KUBE", "notif-1") == SendResult(
        "sms-gateway", "77001"
    )
    assert received == [
        (
            "POST",
            {},
            {
                "userkey": "uk-dinsos",
                "passkey": "pk-secret",
                "to": "081234567890",
                "message": "Halo KUBE",
            },
        )
    ]


def test_get_method_params_header_timeout_and_options():
    sms = sms_client_from_env(
        {
            **GATEWAY,
            "SMS_GATEWAY_METHOD": "get",
            "SMS_GATEWAY_PARAMS": "sender=DINSOS&type=reguler",
            "SMS_GATEWAY_AUTH_HEADER": "Authorization: Bearer abc:def",
            "SMS_GATEWAY_TIMEOUT": "4.5",
            "SMS_GATEWAY_NAME": "zenziva",
            "SMS_GATEWAY_OPTIONS": '{"number_format": "international", "userkey_param": "user"}',
        }
    )
    config = sms.config
    assert (config.name, config.method, config.placement, config.timeout) == (
        "zenziva",
        "GET",
        "query",
        4.5,
    )
    assert config.params == {"sender": "DINSOS", "type": "reguler"}
    assert config.headers == {"Authorization": "Bearer abc:def"}
    assert config.number_format == "international"
    assert config.keys == {"user": "uk", "passkey": "pk"}


def test_the_custom_preset_starts_from_plain_defaults():
    sms = sms_client_from_env(
        {
            "SMS_GATEWAY_URL": "https://api.example.id/v1/sms",
            "SMS_GATEWAY_PRESET": "custom",
            "SMS_GATEWAY_AUTH_HEADER": "X-Api-Key: k-1",
            "SMS_GATEWAY_OPTIONS": (
                '{"placement": "json", "number_param": "msisdn", "success_field": "ok",'
                ' "success_values": ["true"], "message_id_field": "data.id"}'
            ),
        }
    )
    config = sms.config
    assert config.keys == {}
    assert (config.placement, config.number_param, config.number_format) == (
        "json",
        "msisdn",
        "e164",
    )
    assert config.success_values == ("true",)


def test_a_failover_url_wraps_both_gateways():
    sms = sms_client_from_env(
        {
            **GATEWAY,
            "SMS_FAILOVER_URL": "https://backup.example.id/sms",
            "SMS_FAILOVER_PRESET": "custom",
            "SMS_FAILOVER_METHOD": "GET",
        }
    )
    assert isinstance(sms, FailoverSms)
    assert (sms.primary.name, sms.secondary.name) == ("sms-gateway", "sms-failover")
    assert sms.secondary.config.placement == "query"
    assert sms.name == "sms-gateway+sms-failover"


def test_the_file_provider_writes_under_kube_local_dir(tmp_path):
    sms = sms_client_from_env({"SMS_PROVIDER": "file", "KUBE_LOCAL_DIR": str(tmp_path)})
    assert isinstance(sms, FileSms)
    assert sms.directory == tmp_path / "sms"
    assert sms_client_from_env({"SMS_PROVIDER": "file"}).directory == Path(".local/sms")
    named = sms_client_from_env({"SMS_PROVIDER": "FILE", "SMS_FILE_DIR": str(tmp_path / "x")})
    assert named.directory == tmp_path / "x"


def test_smtp_from_the_environment():
    mail = email_client_from_env(
        {
            **SMTP,
            "SMTP_SECURITY": "tls",
            "SMTP_USERNAME": "u",
            "SMTP_PASSWORD": "p",
            "SMTP_TIMEOUT": "12",
        }
    )
    assert isinstance(mail, SmtpEmail)
    assert (mail.config.port, mail.config.security, mail.config.timeout) == (465, "tls", 12)
    plain = email_client_from_env({**SMTP, "SMTP_SECURITY": "none", "SMTP_PORT": "1025"})
    assert (plain.config.port, plain.config.username) == (1025, None)
    assert email_client_from_env(SMTP).config.security == "starttls"


def test_providers_and_their_rates():
    providers = providers_from_env({**GATEWAY, **SMTP, "SMS_RATE_PER_SECOND": "2"})
    assert providers.rates == {"sms-gateway": Rate(2, 1.0), "smtp": Rate(10, 1.0)}
    unlimited = providers_from_env({**GATEWAY, **SMTP, "EMAIL_RATE_PER_SECOND": "0"})
    assert unlimited.rates == {"sms-gateway": Rate(5, 1.0)}


def test_an_empty_value_counts_as_unset():
    assert email_client_from_env({**SMTP, "SMTP_PORT": "", "SMTP_SECURITY": " "}).config.port == 587


@pytest.mark.parametrize(
    "environ, variable",
    [
        ({}, "SMS_GATEWAY_URL"),
        ({"SMS_GATEWAY_URL": "https://x.id"}, "SMS_GATEWAY_USERKEY"),
        ({"SMS_GATEWAY_URL": "https://x.id", "SMS_GATEWAY_USERKEY": "u"}, "SMS_GATEWAY_PASSKEY"),
        ({"SMS_PROVIDER": "whatsapp"}, "SMS_PROVIDER"),
        ({**GATEWAY, "SMS_GATEWAY_PRESET": "zenziva"}, "SMS_GATEWAY_PRESET"),
        ({**GATEWAY, "SMS_GATEWAY_OPTIONS": "{nope"}, "SMS_GATEWAY_OPTIONS"),
        ({**GATEWAY, "SMS_GATEWAY_OPTIONS": "[1]"}, "SMS_GATEWAY_OPTIONS"),
        ({**GATEWAY, "SMS_GATEWAY_AUTH_HEADER": "Bearer abc"}, "SMS_GATEWAY_AUTH_HEADER"),
        ({**GATEWAY, "SMS_GATEWAY_TIMEOUT": "soon"}, "SMS_GATEWAY_TIMEOUT"),
        ({**GATEWAY, "SMS_GATEWAY_OPTIONS": '{"colour": 1}'}, "SMS_GATEWAY_"),
        ({**GATEWAY, "SMS_FAILOVER_URL": "https://y.id"}, "SMS_FAILOVER_USERKEY"),
        (
            {
                **GATEWAY,
                "SMS_FAILOVER_URL": "https://y.id",
                "SMS_FAILOVER_PRESET": "custom",
                "SMS_FAILOVER_NAME": "sms-gateway",
            },
            "SMS_FAILOVER_NAME",
        ),
    ],
)
def test_a_missing_or_wrong_sms_setting_names_its_variable(environ, variable):
    with pytest.raises(ProviderConfigError, match=re.escape(variable)):
        sms_client_from_env(environ)


@pytest.mark.parametrize(
    "environ, variable",
    [
        ({"SMTP_SENDER": "a@b.id"}, "SMTP_HOST"),
        ({"SMTP_HOST": "h"}, "SMTP_SENDER"),
        ({**SMTP, "SMTP_PORT": "smtp"}, "SMTP_PORT"),
        ({**SMTP, "SMTP_SECURITY": "ssl"}, "SMTP_SECURITY"),
        ({**SMTP, "SMTP_USERNAME": "u"}, "SMTP_"),
    ],
)
def test_a_missing_or_wrong_smtp_setting_names_its_variable(environ, variable):
    with pytest.raises(ProviderConfigError, match=re.escape(variable)):
        email_client_from_env(environ)


def test_a_wrong_rate_names_its_variable():
    with pytest.raises(ProviderConfigError, match="SMS_RATE_PER_SECOND"):
        providers_from_env({**GATEWAY, **SMTP, "SMS_RATE_PER_SECOND": "fast"})
