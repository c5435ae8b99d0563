"""Two SMS gateways as one: the secondary carries what the primary cannot carry now."""

from __future__ import annotations

import logging

from services.notifications.providers.base import (
    SendResult,
    SmsClient,
    TransientProviderError,
    mask_number,
)

log = logging.getLogger(__name__)


class FailoverSms:
    """Sends through `primary`; when it fails transiently, through `secondary`.

    A permanent failure (an invalid number, a refused request) is raised at once: another
    gateway would refuse the same message. When both fail transiently, the secondary's
    error is raised with the primary's reason in it. The SendResult names the gateway
    that carried the message.
    """

    def __init__(self, primary: SmsClient, secondary: SmsClient, name: str | None = None):
        self.primary = primary
        self.secondary = secondary
        self.name = name or f"{primary.name}+{secondary.name}"

    def send_sms(self, to_e164: str, text: str, reference: str) -> SendResult:
        """Send one SMS through the first gateway that accepts it."""
        try:
            return self.primary.send_sms(to_e164, text, reference)
        except TransientProviderError as first:
            log.warning(
                "SMS failing over from %s to %s: %s",
                self.primary.name,
                self.secondary.name,
                first.reason,
                extra={
                    "provider": self.primary.name,
                    "reference": reference,
                    "to": mask_number(to_e164),
                },
            )
            try:
                return self.secondary.send_sms(to_e164, text, reference)
            except TransientProviderError as second:
                raise TransientProviderError(
                    second.provider,
                    f"{second.reason} (after {first.provider}: {first.reason})",
                    status=second.status,
                ) from second
