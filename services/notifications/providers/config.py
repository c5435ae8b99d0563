"""The provider clients, built from environment variables (also in docs/providers.md).

SMS
    SMS_PROVIDER            http (default): an HTTP gateway; file: write each SMS as a JSON
                            line to SMS_FILE_DIR/sent.jsonl (the local run, no account).
    SMS_FILE_DIR            with SMS_PROVIDER=file; default $KUBE_LOCAL_DIR/sms, else .local/sms.
    SMS_GATEWAY_URL         required with SMS_PROVIDER=http: where messages are sent.
    SMS_GATEWAY_PRESET      userkey (default): a POST form of userkey, passkey, to (08...)
                            and message, answered by JSON {"status": "1", "messageId": ...};
                            custom: plain defaults, described by SMS_GATEWAY_OPTIONS.
    SMS_GATEWAY_USERKEY     the user key; required with the userkey preset.
    SMS_GATEWAY_PASSKEY     the pass key; required with the userkey preset.
    SMS_GATEWAY_METHOD      GET or POST; GET puts every parameter in the query string.
    SMS_GATEWAY_PARAMS      fixed parameters sent with every message, as a query string
                            (`sender=DINSOS&type=reguler`).
    SMS_GATEWAY_AUTH_HEADER a header sent with every request, `Name: value`
                            (`Authorization: Bearer ...`).
    SMS_GATEWAY_TIMEOUT     seconds to wait for the gateway's answer (default 10).
    SMS_GATEWAY_NAME        the provider's name in results, logs and rate limits
                            (default sms-gateway).
    SMS_GATEWAY_OPTIONS     a JSON object of any other GatewayConfig field: placement
                            (query|form|json), number_param, text_param, number_format
                            (e164|national|international), reference_param, success_field,
                            success_values, success_regex, message_id_field,
                            message_id_regex, reason_field; and userkey_param/passkey_param,
                            the parameter names for the two keys.
    SMS_FAILOVER_URL        a second gateway, used when the first fails transiently; the
                            same family as above with the SMS_FAILOVER_ prefix (its name
                            defaults to sms-failover).

Email (SMTP)
    SMTP_HOST               required: the mail server.
    SMTP_PORT               default by SMTP_SECURITY: 25 none, 587 starttls, 465 tls.
    SMTP_SECURITY           none, starttls (default) or tls.
    SMTP_USERNAME           with SMTP_PASSWORD, log in before sending (both or neither).
    SMTP_PASSWORD
    SMTP_SENDER             required: the From address, e.g. `Dinas Sosial <noreply@...>`.
    SMTP_TIMEOUT            seconds for each step of the conversation (default 30).

Rate limits (shared by every worker process, kept in Redis)
    SMS_RATE_PER_SECOND     SMS a second through the SMS provider (default 5; 0: no limit).
    EMAIL_RATE_PER_SECOND   emails a second through the mail server (default 10; 0: no limit).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import redis

from services.notifications.providers.base import EmailClient, SmsClient
from services.notifications.providers.failover import FailoverSms
from services.notifications.providers.http_sms import GatewayConfig, HttpSms, userkey_gateway
from services.notifications.providers.local import FileSms
from services.notifications.providers.ratelimit import Rate, RateLimiter
from services.notifications.providers.smtp import SECURITIES, SmtpConfig, SmtpEmail

SMS_PROVIDERS = ("http", "file")
PRESETS = ("userkey", "custom")
DEFAULT_SMS_RATE = 5.0
DEFAULT_EMAIL_RATE = 10.0


class ProviderConfigError(ValueError):
    """A provider setting is missing or wrong; the message names the variable."""


class _Env:
    """Reads variables, treating an empty value as unset."""

    def __init__(self, environ: Mapping[str, str] | None):
        self.environ = os.environ if environ is None else environ

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or default

    def require(self, name: str, why: str) -> str:
        value = self.get(name)
        if value is None:
            raise ProviderConfigError(f"{name} is required {why}")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.get(name) or default).lower()
        if value not in choices:
            raise ProviderConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def number(self, name: str, default: float | None, *, whole: bool = False) -> float | None:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw) if whole else float(raw)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise ProviderConfigError(f"{name} must be {kind}, not {raw!r}") from None
        if value < 0:
            raise ProviderConfigError(f"{name} must not be negative")
        return value


def _gateway(env: _Env, prefix: str, default_name: str) -> GatewayConfig:
    """One gateway's configuration from the variables starting with `prefix`."""
    url = env.require(f"{prefix}URL", "for an HTTP SMS gateway")
    preset = env.choice(f"{prefix}PRESET", PRESETS, "userkey")
    raw_options = env.get(f"{prefix}OPTIONS", "{}")
    try:
        options = json.loads(raw_options)
    except ValueError as exc:
        raise ProviderConfigError(f"{prefix}OPTIONS is not JSON: {exc}") from None
    if not isinstance(options, dict):
        raise ProviderConfigError(f"{prefix}OPTIONS must be a JSON object")
    userkey_param = options.pop("userkey_param", "userkey")
    passkey_param = options.pop("passkey_param", "passkey")
    options["name"] = env.get(f"{prefix}NAME", default_name)
    method = env.get(f"{prefix}METHOD")
    if method:
        options["method"] = method.upper()
        if method.upper() == "GET":
            options.setdefault("placement", "query")
    params = env.get(f"{prefix}PARAMS")
    if params:
        options["params"] = {**options.get("params", {}), **dict(parse_qsl(params))}
    header = env.get(f"{prefix}AUTH_HEADER")
    if header:
        name, colon, value = header.partition(":")
        if not colon or not name.strip() or not value.strip():
            raise ProviderConfigError(f"{prefix}AUTH_HEADER must read `Name: value`")
        options["headers"] = {**options.get("headers", {}), name.strip(): value.strip()}
    timeout = env.number(f"{prefix}TIMEOUT", None)
    if timeout is not None:
        options["timeout"] = timeout
    userkey, passkey = env.get(f"{prefix}USERKEY"), env.get(f"{prefix}PASSKEY")
    try:
        if preset == "userkey":
            config = userkey_gateway(
                url,
                env.require(f"{prefix}USERKEY", f"with {prefix}PRESET=userkey"),
                env.require(f"{prefix}PASSKEY", f"with {prefix}PRESET=userkey"),
            )
            keys = {userkey_param: config.keys["userkey"], passkey_param: config.keys["passkey"]}
            return config.with_options({**options, "keys": keys})
        keys = dict(options.get("keys", {}))
        if userkey:
            keys[userkey_param] = userkey
        if passkey:
            keys[passkey_param] = passkey
        return GatewayConfig(url=url).with_options({**options, "keys": keys})
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ProviderConfigError):
            raise
        raise ProviderConfigError(f"{prefix}*: {exc}") from None


def sms_client_from_env(environ: Mapping[str, str] | None = None) -> SmsClient:
    """The SMS client the environment describes: a gateway (with its failover) or a file."""
    env = _Env(environ)
    if env.choice("SMS_PROVIDER", SMS_PROVIDERS, "http") == "file":
        local = env.get("KUBE_LOCAL_DIR", ".local")
        return FileSms(Path(env.get("SMS_FILE_DIR") or Path(local) / "sms"))
    primary = HttpSms(_gateway(env, "SMS_GATEWAY_", "sms-gateway"))
    if env.get("SMS_FAILOVER_URL") is None:
        return primary
    secondary = HttpSms(_gateway(env, "SMS_FAILOVER_", "sms-failover"))
    if secondary.name == primary.name:
        raise ProviderConfigError("SMS_FAILOVER_NAME must differ from SMS_GATEWAY_NAME")
    return FailoverSms(primary, secondary)


def email_client_from_env(environ: Mapping[str, str] | None = None) -> EmailClient:
    """The SMTP client the environment describes."""
    env = _Env(environ)
    security = env.choice("SMTP_SECURITY", SECURITIES, "starttls")
    port = env.number("SMTP_PORT", None, whole=True)
    try:
        return SmtpEmail(
            SmtpConfig(
                host=env.require("SMTP_HOST", "to send email"),
                sender=env.require("SMTP_SENDER", "to send email"),
                port=int(port) if port is not None else None,
                security=security,
                username=env.get("SMTP_USERNAME"),
                password=env.get("SMTP_PASSWORD"),
                timeout=env.number("SMTP_TIMEOUT", 30.0),
            )
        )
    except ProviderConfigError:
        raise
    except ValueError as exc:
        raise ProviderConfigError(f"SMTP_*: {exc}") from None


def _rate(env: _Env, name: str, default: float) -> Rate | None:
    value = env.number(name, default)
    return Rate.per_second(value) if value else None


@dataclass(frozen=True)
class Providers:
    """The clients a notifications worker sends with, and their rate limits."""

    sms: SmsClient
    email: EmailClient
    rates: Mapping[str, Rate]

    def limiter(self, client: redis.Redis, key_prefix: str) -> RateLimiter:
        """A limiter holding these providers' rates in Redis under `key_prefix`."""
        return RateLimiter(client, self.rates, key_prefix)


def providers_from_env(environ: Mapping[str, str] | None = None) -> Providers:
    """Every provider client and rate the environment describes."""
    env = _Env(environ)
    sms, email = sms_client_from_env(environ), email_client_from_env(environ)
    rates = {
        sms.name: _rate(env, "SMS_RATE_PER_SECOND", DEFAULT_SMS_RATE),
        email.name: _rate(env, "EMAIL_RATE_PER_SECOND", DEFAULT_EMAIL_RATE),
    }
    return Providers(sms, email, {name: rate for name, rate in rates.items() if rate})
