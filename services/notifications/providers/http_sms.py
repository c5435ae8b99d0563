"""A generic HTTP SMS gateway client, configured by data: one class for every gateway.

Indonesian offices buy SMS from gateways that differ only in details: the URL, GET or POST,
the parameter names for the keys, the number and the text, the number's format and how the
answer says "sent". GatewayConfig holds those details; HttpSms sends with them.
`userkey_gateway` is the preset for the common user-key/pass-key style.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from services.notifications.providers.base import (
    PermanentProviderError,
    SendResult,
    TransientProviderError,
    is_e164,
    mask_number,
    safe_reason,
)

log = logging.getLogger(__name__)

METHODS = ("GET", "POST")
PLACEMENTS = ("query", "form", "json")
# e164 `+6281234567890`, national `081234567890`, international `6281234567890`.
NUMBER_FORMATS = ("e164", "national", "international")
_INDONESIA = "+62"


@dataclass(frozen=True)
class GatewayConfig:
    """Everything that makes one HTTP SMS gateway different from another."""

    url: str
    name: str = "sms-gateway"
    method: str = "POST"
    # Where the parameters go: the query string, a form body or a JSON body.
    placement: str = "form"
    number_param: str = "to"
    text_param: str = "message"
    # Credential parameters (e.g. userkey, passkey): sent like params, never logged.
    keys: Mapping[str, str] = field(default_factory=dict)
    # Fixed parameters sent with every message (a sender id, a route).
    params: Mapping[str, str] = field(default_factory=dict)
    # Header auth (e.g. {"Authorization": "Bearer ..."}): values never logged.
    headers: Mapping[str, str] = field(default_factory=dict)
    # A parameter that carries our reference, for gateways that echo it in receipts.
    reference_param: str | None = None
    number_format: str = "e164"
    timeout: float = 10.0
    # Success is HTTP 2xx, plus (when set) a JSON field holding one of success_values ...
    success_field: str | None = None
    success_values: tuple[str, ...] = ()
    # ... and (when set) a regular expression found in the body.
    success_regex: str | None = None
    # The gateway's id for the message: a JSON field path (`data.0.id`) or a regex
    # (its first group, or the whole match).
    message_id_field: str | None = None
    message_id_regex: str | None = None
    # A JSON field with the gateway's own words when it rejects a message.
    reason_field: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "success_values", tuple(str(v) for v in self.success_values))
        problems = []
        if not self.url.startswith(("http://", "https://")):
            problems.append("url must start with http:// or https://")
        if self.method not in METHODS:
            problems.append(f"method must be one of {', '.join(METHODS)}")
        if self.placement not in PLACEMENTS:
            problems.append(f"placement must be one of {', '.join(PLACEMENTS)}")
        elif self.method == "GET" and self.placement != "query":
            problems.append("a GET request carries its parameters in the query")
        if self.number_format not in NUMBER_FORMATS:
            problems.append(f"number_format must be one of {', '.join(NUMBER_FORMATS)}")
        if not self.timeout > 0:
            problems.append("timeout must be a positive number of seconds")
        if self.success_field and not self.success_values:
            problems.append("success_field needs success_values")
        for name in ("success_regex", "message_id_regex"):
            try:
                re.compile(getattr(self, name) or "")
            except re.error as exc:
                problems.append(f"{name} is not a regular expression: {exc}")
        if problems:
            raise ValueError(f"SMS gateway {self.name}: " + "; ".join(problems))

    def with_options(self, options: Mapping[str, Any]) -> GatewayConfig:
        """This configuration with some fields replaced; an unknown field is an error."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"SMS gateway {self.name}: unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **options)


def userkey_gateway(url: str, userkey: str, passkey: str, **options: Any) -> GatewayConfig:
    """The user-key/pass-key style (Zenziva-like): a POST form of userkey, passkey, to
    (national `08...`) and message, answered by JSON with `status` "1" and a `messageId`."""
    preset = GatewayConfig(
        url=url,
        method="POST",
        placement="form",
        keys={"userkey": userkey, "passkey": passkey},
        number_param="to",
        text_param="message",
        number_format="national",
        success_field="status",
        success_values=("1",),
        message_id_field="messageId",
        reason_field="text",
    )
    return preset.with_options(options)


def format_number(to_e164: str, number_format: str) -> str:
    """The number as the gateway wants it; raises ValueError when it cannot be written so."""
    if not is_e164(to_e164):
        raise ValueError("not an E.164 number")
    if number_format == "international":
        return to_e164[1:]
    if number_format == "national":
        if not to_e164.startswith(_INDONESIA):
            raise ValueError("the national format needs an Indonesian (+62) number")
        return "0" + to_e164[len(_INDONESIA) :]
    return to_e164


def national_or_none(to_e164: str) -> str | None:
    """The national form of an Indonesian number, else None."""
    try:
        return format_number(to_e164, "national")
    except ValueError:
        return None


def json_path(document: Any, path: str) -> Any:
    """The value at a dotted path (`data.0.id`: keys and list indices), or None."""
    value = document
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return None
    return value


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _session_for(url: str) -> requests.Session:
    """A session that read the environment's proxy and CA settings once, here: with
    `trust_env` on, requests reads them again for every request (a walk through the whole
    environment, a measurable share of a local SMS's cost)."""
    session = requests.Session()
    session.proxies.update(requests.utils.get_environ_proxies(url))
    session.verify = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    )
    session.trust_env = False
    return session


class HttpSms:
    """Sends SMS through an HTTP gateway described by a GatewayConfig."""

    def __init__(self, config: GatewayConfig, session: requests.Session | None = None):
        self.config = config
        self.name = config.name
        self.session = session or _session_for(config.url)
        self._success = re.compile(config.success_regex) if config.success_regex else None
        self._message_id = re.compile(config.message_id_regex) if config.message_id_regex else None
        self._secrets = tuple(config.keys.values()) + tuple(config.headers.values())

    def close(self) -> None:
        self.session.close()

    def send_sms(self, to_e164: str, text: str, reference: str) -> SendResult:
        """Send one SMS; raise TransientProviderError or PermanentProviderError when the
        gateway does not accept it."""
        config = self.config
        masked = mask_number(to_e164)
        try:
            number = format_number(to_e164, config.number_format)
        except ValueError as exc:
            raise PermanentProviderError(self.name, f"{exc}: {masked}") from None
        values = {
            **config.params,
            **config.keys,
            config.number_param: number,
            config.text_param: text,
        }
        if config.reference_param:
            values[config.reference_param] = reference
        placement = {"query": "params", "form": "data", "json": "json"}[config.placement]
        try:
            response = self.session.request(
                config.method,
                config.url,
                headers=dict(config.headers),
                timeout=config.timeout,
                allow_redirects=False,
                **{placement: values},
            )
        except requests.Timeout:
            raise TransientProviderError(
                self.name, f"no answer within {config.timeout:g}s"
            ) from None
        except requests.ConnectionError as exc:
            raise TransientProviderError(
                self.name, f"connection failed ({type(exc).__name__})"
            ) from None
        except requests.RequestException as exc:
            raise TransientProviderError(
                self.name, f"request failed ({type(exc).__name__})"
            ) from None
        result = self._read(response, to_e164, masked)
        log.info(
            "SMS accepted by %s",
            self.name,
            extra={
                "provider": self.name,
                "reference": reference,
                "to": masked,
                "provider_message_id": result.message_id,
            },
        )
        return result

    def _reason(self, text: str, to_e164: str, masked: str) -> str:
        # The number in each form a gateway may echo, longest first: the log masker knows
        # only Indonesian numbers.
        forms = {to_e164, to_e164[1:], national_or_none(to_e164)} - {None}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, masked)
        return safe_reason(text, secrets=self._secrets)

    def _read(self, response: requests.Response, to_e164: str, masked: str) -> SendResult:
        config = self.config
        status = response.status_code
        body = response.text
        # 408 and 429 ask to come back later; 5xx is the gateway's own trouble; 401 is our
        # account's (an expired key): no message's fault, so a failover gateway carries it
        # and, without one, it is retried and ends visibly failed, to replay once fixed.
        if status in (401, 408, 429) or status >= 500:
            raise TransientProviderError(self.name, f"HTTP {status}", status=status)
        if not 200 <= status < 300:
            detail = self._reason(body, to_e164, masked)
            raise PermanentProviderError(
                self.name, f"HTTP {status}" + (f": {detail}" if detail else ""), status=status
            )
        document = None
        if config.success_field or config.message_id_field or config.reason_field:
            try:
                document = json.loads(body)
            except ValueError:
                if config.success_field:
                    # The outcome is unknown (a proxy's page, a truncated answer): like a
                    # timeout, worth another try rather than a message lost for good.
                    raise TransientProviderError(
                        self.name, f"HTTP {status} with an answer that is not JSON", status=status
                    ) from None
        accepted = True
        if config.success_field:
            value = _as_text(json_path(document, config.success_field))
            accepted = value in config.success_values
        if accepted and self._success is not None:
            accepted = self._success.search(body) is not None
        if not accepted:
            words = (
                _as_text(json_path(document, config.reason_field)) if config.reason_field else None
            )
            detail = self._reason(words or body, to_e164, masked)
            raise PermanentProviderError(self.name, f"rejected: {detail}", status=status)
        return SendResult(self.name, self._read_message_id(document, body))

    def _read_message_id(self, document: Any, body: str) -> str | None:
        if self.config.message_id_field:
            found = _as_text(json_path(document, self.config.message_id_field))
            if found:
                return found
        if self._message_id is not None:
            match = self._message_id.search(body)
            if match:
                return match.group(1) if match.re.groups else match.group(0)
        return None
