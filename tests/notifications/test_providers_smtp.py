"""The SMTP email client against real aiosmtpd servers started by the tests."""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Callable

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notifications.providers import (
    EmailClient,
    PermanentProviderError,
    SendResult,
    TransientProviderError,
)
from services.notifications.providers.smtp import REFERENCE_HEADER, SmtpConfig, SmtpEmail

SENDER = "Dinas Sosial Kaltim <noreply@dinsos.kaltimprov.go.id>"
OFFICE = "bidang-pemberdayaan@dinsos.kaltimprov.go.id"
SUBJECT = "Pencairan UEP: KUBE Maju Jaya"
TEXT = "Bantuan UEP sebesar Rp 20.000.000 telah dicairkan."


class Inbox:
    """An aiosmtpd handler that keeps what it receives and refuses chosen recipients."""

    def __init__(self, refuse: dict[str, str] | None = None, data_reply: str = "250 OK"):
        self.refuse = refuse or {}
        self.data_reply = data_reply
        self.received: list = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply.startswith("250"):
            self.received.append(envelope)
        return self.data_reply

    def messages(self):
        return [
            email.message_from_bytes(e.original_content or e.content, policy=email.policy.default)
            for e in self.received
        ]


def start_server(handler, port: Callable[[], int], **options) -> Controller:
    """A started aiosmtpd server; a start slowed by a busy machine is tried again."""
    for attempt in range(3):
        controller = Controller(
            handler, hostname="127.0.0.1", port=port(), ready_timeout=30, **options
        )
        try:
            controller.start()
            return controller
        except (TimeoutError, OSError, RuntimeError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def smtp_server(free_port):
    """Start an aiosmtpd server with the given handler and options; stopped after the test."""
    started = []

    def start(handler, **options) -> Controller:
        controller = start_server(handler, free_port, **options)
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def mailer(controller: Controller, security="none", context=None, **config) -> SmtpEmail:
    return SmtpEmail(
        SmtpConfig(
            host="127.0.0.1",
            port=controller.port,
            sender=SENDER,
            security=security,
            timeout=10,
            **config,
        ),
        ssl_context=context,
    )


def test_the_smtp_client_satisfies_the_email_protocol():
    assert isinstance(SmtpEmail(SmtpConfig(host="h", sender=SENDER)), EmailClient)


def test_delivered_with_message_id_and_reference(smtp_server):
    inbox = Inbox()
    controller = smtp_server(inbox)

    result = mailer(controller).send_email(
        OFFICE, SUBJECT, TEXT, "notif-10", html="<p>Bantuan <b>UEP</b> telah dicairkan.</p>"
    )

    assert result.provider == "smtp"
    assert result.message_id.endswith("@dinsos.kaltimprov.go.id>")
    [envelope] = inbox.received
    assert envelope.mail_from == "noreply@dinsos.kaltimprov.go.id"
    assert envelope.rcpt_tos == [OFFICE]
    [message] = inbox.messages()
    assert message["Message-ID"] == result.message_id
    assert message[REFERENCE_HEADER] == "notif-10"
    assert message["Subject"] == SUBJECT
    assert message["From"] == SENDER
    assert message.get_body(("plain",)).get_content().strip() == TEXT
    assert "<b>UEP</b>" in message.get_body(("html",)).get_content()


def test_a_recipient_refused_with_550_is_permanent(smtp_server):
    controller = smtp_server(Inbox(refuse={OFFICE: "550 5.1.1 <tidak.ada> user unknown"}))

    with pytest.raises(PermanentProviderError) as raised:
        mailer(controller).send_email(OFFICE, SUBJECT, TEXT, "r")

    assert raised.value.status == 550
    assert raised.value.reason.startswith("recipient refused: 550")


def test_a_recipient_deferred_with_450_is_transient(smtp_server):
    controller = smtp_server(Inbox(refuse={OFFICE: "450 4.2.0 greylisted, try later"}))
    with pytest.raises(TransientProviderError) as raised:
        mailer(controller).send_email(OFFICE, SUBJECT, TEXT, "r")
    assert raised.value.status == 450


def test_a_message_refused_after_data_with_554_is_permanent(smtp_server):
    controller = smtp_server(Inbox(data_reply="554 5.7.1 message looks like spam"))
    with pytest.raises(PermanentProviderError) as raised:
        mailer(controller).send_email(OFFICE, SUBJECT, TEXT, "r")
    assert raised.value.reason == "message refused: 554 5.7.1 message looks like spam"


def test_nothing_listening_is_transient(closed_port):
    client = SmtpEmail(
        SmtpConfig(host="127.0.0.1", port=closed_port, sender=SENDER, security="none", timeout=5)
    )
    with pytest.raises(TransientProviderError) as raised:
        client.send_email(OFFICE, SUBJECT, TEXT, "r")
    assert raised.value.reason == "connection failed (ConnectionRefusedError)"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"dinsos",
        b"rahasia",
    )
    return AuthResult(success=ok, handled=False)


def test_starttls_with_login_delivers(smtp_server, server_tls, client_tls):
    inbox = Inbox()
    controller = smtp_server(
        inbox,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )

    result = mailer(
        controller, "starttls", client_tls, username="dinsos", password="rahasia"
    ).send_email(OFFICE, SUBJECT, TEXT, "r")

    assert isinstance(result, SendResult)
    assert len(inbox.received) == 1


def test_a_refused_login_waits_for_a_retry_without_leaking_the_password(
    smtp_server, server_tls, client_tls
):
    controller = smtp_server(
        Inbox(),
        tls_context=server_tls,
        require_starttls=True,
        authenticator=_authenticator,
        auth_required=True,
    )
    client = mailer(controller, "starttls", client_tls, username="dinsos", password="salah-123")

    with pytest.raises(TransientProviderError) as raised:
        client.send_email(OFFICE, SUBJECT, TEXT, "r")

    assert raised.value.status == 535
    assert "salah-123" not in str(raised.value)


def test_starttls_against_an_untrusted_certificate_is_transient(smtp_server, server_tls):
    controller = smtp_server(Inbox(), tls_context=server_tls, require_starttls=True)
    # The system's CAs do not trust the test's self-signed certificate.
    with pytest.raises(TransientProviderError) as raised:
        mailer(controller, "starttls", ssl.create_default_context()).send_email(
            OFFICE, SUBJECT, TEXT, "r"
        )
    assert "SSL" in raised.value.reason


def test_implicit_tls_delivers(smtp_server, server_tls, client_tls):
    inbox = Inbox()
    controller = smtp_server(inbox, ssl_context=server_tls)
    mailer(controller, "tls", client_tls).send_email(OFFICE, SUBJECT, TEXT, "r")
    assert len(inbox.received) == 1


@pytest.mark.parametrize(
    "config, message",
    [
        ({"security": "ssl"}, "security"),
        ({"username": "u"}, "username and password"),
        ({"sender": "not an address"}, "sender"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_a_wrong_smtp_configuration_says_what_is_wrong(config, message):
    with pytest.raises(ValueError, match=message):
        SmtpConfig(**{"host": "h", "sender": SENDER, **config})


@pytest.mark.parametrize("security, port", [("none", 25), ("starttls", 587), ("tls", 465)])
def test_the_port_defaults_by_security(security, port):
    assert SmtpConfig(host="h", sender=SENDER, security=security).port == port
