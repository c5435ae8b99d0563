"""The provider interface: what every SMS and email client offers, and how it fails.

A client either returns a SendResult (the provider accepted the message) or raises one of
two errors: TransientProviderError (worth retrying later: timeouts, connection errors,
HTTP 5xx and 429, SMTP 4xx) or PermanentProviderError (the same request will never
succeed: an invalid number, other HTTP 4xx, an SMTP 5xx refusal). Each error carries the
provider's name and a short reason that is safe to log: no full phone number, no key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shared.logs import mask_personal_data


@dataclass(frozen=True)
class SendResult:
    """A message the provider accepted: who carried it and the provider's id for it."""

    provider: str
    message_id: str | None


class ProviderError(Exception):
    """A provider did not accept a message; `reason` is short and safe to log."""

    transient: bool = False

    def __init__(self, provider: str, reason: str, *, status: int | None = None):
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason
        # The HTTP status or SMTP reply code, when the provider answered with one.
        self.status = status

    def __reduce__(self):
        # Keyword-only arguments do not survive the default pickling (Celery's result
        # backend and multiprocessing pickle exceptions).
        return (_rebuild_error, (type(self), self.provider, self.reason, self.status))


def _rebuild_error(cls, provider, reason, status):
    return cls(provider, reason, status=status)


class TransientProviderError(ProviderError):
    """Worth retrying: the provider was unreachable, overloaded or slow."""

    transient = True


class PermanentProviderError(ProviderError):
    """Never worth retrying: the provider refused this message for good."""


@runtime_checkable
class SmsClient(Protocol):
    """Sends one SMS to an E.164 number (`+628...`)."""

    name: str

    def send_sms(self, to_e164: str, text: str, reference: str) -> SendResult: ...


@runtime_checkable
class EmailClient(Protocol):
    """Sends one email to one address, plain text with an optional HTML alternative."""

    name: str

    def send_email(
        self, to: str, subject: str, text: str, reference: str, html: str | None = None
    ) -> SendResult: ...


_E164 = re.compile(r"\+[1-9]\d{6,14}")
# What may stay visible of a number: up to six characters of its head (+62 and the mobile
# prefix) and its last four, with never fewer than four digits hidden between them.
_KEEP_HEAD = 6
_KEEP_TAIL = 4
_HIDE_AT_LEAST = 4


def is_e164(value: str) -> bool:
    """Whether `value` is a number in E.164 form: a plus and 7 to 15 digits."""
    return bool(_E164.fullmatch(value))


def mask_number(number: str) -> str:
    """Hide the middle digits of a phone number: `+6281234567890` -> `+62812****7890`."""
    hidden = max(_HIDE_AT_LEAST, len(number) - _KEEP_HEAD - _KEEP_TAIL)
    head = len(number) - hidden - _KEEP_TAIL
    if head < 1:
        return "*" * len(number)
    return number[:head] + "*" * hidden + number[-_KEEP_TAIL:]


_REASON_MAX = 160


def safe_reason(text: str, *, secrets: tuple[str, ...] = ()) -> str:
    """A provider's words made fit for a log: one line, secrets and personal data masked,
    cut short."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = mask_personal_data(" ".join(text.split()))
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 3] + "..."
