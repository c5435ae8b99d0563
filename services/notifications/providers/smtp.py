"""Email through an SMTP server (the office's relay, a mail service, or the local sink)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from services.notifications.providers.base import (
    PermanentProviderError,
    ProviderError,
    SendResult,
    TransientProviderError,
    safe_reason,
)

log = logging.getLogger(__name__)

SECURITIES = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
# Our reference travels in its own header, so a bounce or a reply can be matched to it.
REFERENCE_HEADER = "X-KUBE-Reference"


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand email over."""

    host: str
    sender: str
    port: int | None = None
    # none: plain SMTP; starttls: upgrade after connecting (587); tls: TLS from the start (465).
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    name: str = "smtp"

    def __post_init__(self) -> None:
        problems = []
        if self.security not in SECURITIES:
            problems.append(f"security must be one of {', '.join(SECURITIES)}")
        if bool(self.username) != bool(self.password):
            problems.append("username and password go together")
        if "@" not in parseaddr(self.sender)[1]:
            problems.append("sender must be an email address")
        if not self.timeout > 0:
            problems.append("timeout must be a positive number of seconds")
        if problems:
            raise ValueError(f"SMTP {self.name}: " + "; ".join(problems))
        if self.port is None and self.security in DEFAULT_PORTS:
            object.__setattr__(self, "port", DEFAULT_PORTS[self.security])


class SmtpEmail:
    """Sends each email over its own SMTP connection."""

    def __init__(self, config: SmtpConfig, ssl_context: ssl.SSLContext | None = None):
        self.config = config
        self.name = config.name
        # Certificates are checked against the system's CAs unless a context is given.
        self.ssl_context = ssl_context or ssl.create_default_context()

    def build_message(
        self, to: str, subject: str, text: str, reference: str, html: str | None = None
    ) -> EmailMessage:
        """The email as it will be sent, with its Message-ID and reference header."""
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        domain = parseaddr(self.config.sender)[1].rpartition("@")[2]
        message["Message-ID"] = make_msgid(domain=domain)
        message[REFERENCE_HEADER] = reference
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        return message

    def send_email(
        self, to: str, subject: str, text: str, reference: str, html: str | None = None
    ) -> SendResult:
        """Send one email; raise TransientProviderError or PermanentProviderError when the
        server does not accept it."""
        message = self.build_message(to, subject, text, reference, html)
        try:
            smtp = self._connect()
            try:
                smtp.send_message(message)
            finally:
                _quit(smtp)
        except smtplib.SMTPRecipientsRefused as exc:
            code, words = next(iter(exc.recipients.values()))
            raise self._refused("recipient refused", code, words) from None
        except smtplib.SMTPDataError as exc:
            raise self._refused("message refused", exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPResponseException as exc:
            # The greeting, the login or the sender refused: the server or our account is
            # at fault, not this message, so it waits for a retry (or a replay once fixed).
            raise TransientProviderError(
                self.name,
                self._words(f"{type(exc).__name__}: {exc.smtp_code}", exc.smtp_error),
                status=exc.smtp_code,
            ) from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            # Refused or dropped connections, timeouts, TLS failures: try again later.
            raise TransientProviderError(
                self.name, f"connection failed ({type(exc).__name__})"
            ) from None
        log.info(
            "email accepted by %s",
            self.name,
            extra={
                "provider": self.name,
                "reference": reference,
                "provider_message_id": message["Message-ID"],
            },
        )
        return SendResult(self.name, message["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        if config.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=self.ssl_context
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            if config.security == "starttls":
                smtp.starttls(context=self.ssl_context)
            if config.username:
                smtp.login(config.username, config.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _words(self, prefix: str, words: bytes | str) -> str:
        if isinstance(words, bytes):
            words = words.decode("utf-8", "replace")
        return f"{prefix} {safe_reason(words, secrets=(self.config.password or '',))}".strip()

    def _refused(self, what: str, code: int, words: bytes | str) -> ProviderError:
        """A reply code of 5xx refuses this message for good; 4xx asks to try again later."""
        kind = PermanentProviderError if 500 <= code < 600 else TransientProviderError
        return kind(self.name, self._words(f"{what}: {code}", words), status=code)


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye; a failure now cannot undo a message already accepted."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
