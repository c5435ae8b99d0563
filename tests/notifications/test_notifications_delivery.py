"""From grant events to SMS and email, against a real HTTP gateway and a real SMTP server:
delivered, retried, refused, failed over, never twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from services.notifications.delivery import deliver, deliver_many, send_after
from services.notifications.models import Message, OfficeMailbox, OptOut
from services.notifications.providers.failover import FailoverSms
from services.notifications.providers.http_sms import HttpSms, userkey_gateway
from shared.db import utcnow

from notification_factories import (
    delivery,
    disbursed,
    grant_snapshot,
    national,
    reachable_group,
    receive,
    stage_changed,
)
from support import Gateway


def messages_of(apps, **where) -> list[Message]:
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        statement = select(Message).order_by(Message.recipient)
        for key, value in where.items():
            statement = statement.where(getattr(Message, key) == value)
        return list(session.scalars(statement))


def outbox_count(apps, event_type: str, message_id) -> int:
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        return session.execute(
            text(
                "SELECT count(*) FROM outbox_events WHERE event_type = :t "
                "AND envelope->'payload'->>'message_id' = :m"
            ),
            {"t": event_type, "m": str(message_id)},
        ).scalar()


def test_a_submitted_grant_makes_one_sms_per_member_and_a_redelivery_none(apps, sms_gateway):
    group_id, phones, name = reachable_group(apps, members=3)
    event = stage_changed(grant_snapshot(group_id, name))
    envelope = receive(apps, event)
    made = messages_of(apps, event_id=envelope["id"])
    assert sorted(m.recipient for m in made) == sorted(phones)
    assert all(m.status == "queued" and m.channel == "sms" for m in made)
    assert "Rp 20.000.000" in made[0].body and made[0].language == "id"
    assert made[0].encoding == "GSM-7" and made[0].sms_parts == 1

    apps["notifications"].extensions["kube"].consumer.handle(envelope)  # redelivered
    assert len(messages_of(apps, event_id=envelope["id"])) == 3

    for message in made:
        assert deliver(delivery(apps), message.id, utcnow()).status == "sent"
        assert deliver(delivery(apps), message.id, utcnow()).status == "skipped"
    for number in phones:
        assert len(sms_gateway.to(national(number))) == 1
    sent = messages_of(apps, event_id=envelope["id"])
    assert all(m.status == "sent" and m.provider_message_id.startswith("gw-") for m in sent)
    assert outbox_count(apps, "notification.sent", sent[0].id) == 1


def test_a_5xx_then_a_timeout_are_retried_until_delivered(apps, sms_gateway):
    group_id, (number,), name = reachable_group(apps, members=1)
    sms_gateway.plan(national(number), 500, 3.0)  # then ok; the gateway's timeout is 2 s
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    (message,) = messages_of(apps, event_id=envelope["id"])
    now = utcnow()
    first = deliver(delivery(apps), message.id, now)
    assert first.status == "queued" and first.retry_in > 0
    assert deliver(delivery(apps), message.id, now).status == "deferred"
    later = now + timedelta(seconds=5)
    assert deliver(delivery(apps), message.id, later).status == "queued"  # the timeout
    assert deliver(delivery(apps), message.id, later + timedelta(seconds=5)).status == "sent"
    (done,) = messages_of(apps, id=message.id)
    assert (done.status, done.attempts) == ("sent", 3)
    assert len(sms_gateway.to(national(number))) == 1


def test_a_permanent_refusal_fails_at_once_and_a_retry_sends_again(
    apps, sms_gateway, clients, auth
):
    group_id, (number,), name = reachable_group(apps, members=1)
    sms_gateway.plan(national(number), "reject")
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    (message,) = messages_of(apps, event_id=envelope["id"])
    assert deliver(delivery(apps), message.id, utcnow()).status == "failed"
    (failed,) = messages_of(apps, id=message.id)
    assert failed.attempts == 1 and "Nomor tidak valid" in failed.last_error
    assert outbox_count(apps, "notification.failed", message.id) == 1

    listed = (
        clients["notifications"]
        .get(f"/api/v1/messages?status=failed&group_id={group_id}", headers=auth("auditor"))
        .json
    )
    assert listed["items"][0]["recipient"] != number
    assert listed["items"][0]["recipient"].endswith(number[-4:])
    retried = clients["notifications"].post(
        f"/api/v1/messages/{message.id}/retry", headers=auth("verifikator")
    )
    assert retried.status_code == 200, retried.json
    assert retried.json["status"] == "queued"
    assert deliver(delivery(apps), message.id, utcnow()).status == "sent"
    again = clients["notifications"].post(
        f"/api/v1/messages/{message.id}/retry", headers=auth("verifikator")
    )
    assert again.status_code == 409


def test_the_failover_gateway_carries_what_the_first_cannot(apps, sms_gateway):
    second = Gateway()
    try:
        group_id, (number,), name = reachable_group(apps, members=1)
        sms_gateway.plan(national(number), 500)
        pair = FailoverSms(
            HttpSms(userkey_gateway(sms_gateway.url, "u", "p", name="sms-gateway", timeout=2)),
            HttpSms(userkey_gateway(second.url, "u", "p", name="sms-failover", timeout=2)),
        )
        envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
        (message,) = messages_of(apps, event_id=envelope["id"])
        assert deliver(delivery(apps, sms=pair), message.id, utcnow()).status == "sent"
        (sent,) = messages_of(apps, id=message.id)
        assert sent.provider == "sms-failover"
        assert len(second.to(national(number))) == 1
        assert sms_gateway.to(national(number)) == []
    finally:
        second.stop()


def test_a_batch_gives_each_message_its_own_outcome(apps, sms_gateway):
    group_id, phones, name = reachable_group(apps, members=6)
    refused, busy, opted_out, *fine = phones
    sms_gateway.plan(national(refused), "reject")
    sms_gateway.plan(national(busy), 500)
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        session.add(OptOut(phone=opted_out, source="api"))
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    made = {m.recipient: m.id for m in messages_of(apps, event_id=envelope["id"])}
    now = utcnow()

    outcomes = deliver_many(delivery(apps, concurrency=4), list(made.values()), now)
    status = {number: outcomes[made[number]].status for number in phones}
    assert status == {
        refused: "failed",
        busy: "queued",
        opted_out: "failed",
        **dict.fromkeys(fine, "sent"),
    }
    assert outcomes[made[busy]].retry_in > 0
    for number in fine:
        assert len(sms_gateway.to(national(number))) == 1
        assert outbox_count(apps, "notification.sent", made[number]) == 1
    assert sms_gateway.to(national(opted_out)) == []
    assert outbox_count(apps, "notification.failed", made[refused]) == 1

    again = deliver_many(delivery(apps, concurrency=4), list(made.values()), now)
    assert again[made[busy]].status == "deferred"
    assert {again[made[number]].status for number in [*fine, refused]} == {"skipped"}
    for number in fine:
        assert len(sms_gateway.to(national(number))) == 1


def test_a_batch_takes_only_the_send_slots_the_rate_limit_has(apps, sms_gateway):
    from services.notifications.providers.ratelimit import Rate, RateLimiter

    group_id, phones, name = reachable_group(apps, members=5)
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    ids = [m.id for m in messages_of(apps, event_id=envelope["id"])]
    key_prefix = f"test-rl-{uuid.uuid4().hex}"
    redis_client = apps["notifications"].extensions["kube"].redis
    limiter = RateLimiter(redis_client, {"sms-gateway": Rate(3, 30.0)}, key_prefix)
    try:
        outcomes = deliver_many(delivery(apps, limiter=limiter), ids, utcnow())
    finally:
        limiter.reset("sms-gateway")
    statuses = sorted(outcome.status for outcome in outcomes.values())
    assert statuses == ["deferred", "deferred", "sent", "sent", "sent"]
    assert all(0 < o.retry_in <= 30 for o in outcomes.values() if o.status == "deferred")
    assert sum(len(sms_gateway.to(national(number))) for number in phones) == 3


def test_a_provider_call_that_breaks_leaves_only_its_message_sending(apps, sms_gateway):
    group_id, phones, name = reachable_group(apps, members=3)
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    made = {m.recipient: m.id for m in messages_of(apps, event_id=envelope["id"])}
    gateway = delivery(apps).sms
    broken = phones[0]

    class Breaks:
        name = gateway.name

        def send_sms(self, to_e164, text, reference):
            if to_e164 == broken:
                raise RuntimeError("a bug after the request went out")
            return gateway.send_sms(to_e164, text, reference)

    outcomes = deliver_many(delivery(apps, sms=Breaks(), concurrency=3), made.values(), utcnow())
    assert outcomes[made[broken]].status == "skipped"
    assert {outcomes[made[n]].status for n in phones[1:]} == {"sent"}
    assert {m.recipient: m.status for m in messages_of(apps, event_id=envelope["id"])} == {
        broken: "sending",
        phones[1]: "sent",
        phones[2]: "sent",
    }


def test_an_opted_out_number_gets_only_critical_messages(apps, sms_gateway):
    group_id, (number,), name = reachable_group(apps, members=1)
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        session.add(OptOut(phone=number, source="api"))
    grant = grant_snapshot(group_id, name, stage="approved")
    approved = receive(apps, stage_changed(grant))
    paid = receive(apps, disbursed(grant))
    (told,) = messages_of(apps, event_id=approved["id"])
    (money,) = messages_of(apps, event_id=paid["id"])
    assert deliver(delivery(apps), told.id, utcnow()).status == "failed"
    assert deliver(delivery(apps), money.id, utcnow()).status == "sent"
    assert messages_of(apps, id=told.id)[0].last_error == "The number opted out of SMS."
    (arrived,) = sms_gateway.to(national(number))
    assert "25 November 2026" in arrived["message"]


def test_quiet_hours_hold_ordinary_sms_until_seven_local_time():
    late = datetime(2026, 11, 29, 14, 30, tzinfo=UTC)  # 22:30 WITA in Samarinda
    held = send_after(late, "6472011001", critical=False, channel="sms", quiet=True)
    assert held == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # 07:00 WITA the next day
    assert send_after(late, "6472011001", critical=True, channel="sms", quiet=True) == late
    assert send_after(late, "6472011001", critical=False, channel="email", quiet=True) == late
    day = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)  # 11:00 WITA
    assert send_after(day, "6472011001", critical=False, channel="sms", quiet=True) == day


def test_a_missed_deadline_emails_the_responsible_roles_mailbox(apps, mail_server):
    group_id, _, name = reachable_group(apps, members=1)
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        session.add(
            OfficeMailbox(
                region_code="6472", role="verifikator", email="verval@dinsos-samarinda.example.id"
            )
        )
    grant = grant_snapshot(group_id, name)
    event = (
        "grant.deadline_passed",
        {
            "grant": grant,
            "stage": "submitted",
            "due_at": "2026-11-16T16:00:00+00:00",
            "responsible_role": "verifikator",
        },
    )
    envelope = receive(apps, event)
    (message,) = messages_of(apps, event_id=envelope["id"])
    assert message.channel == "email" and message.recipient == "verval@dinsos-samarinda.example.id"
    assert deliver(delivery(apps), message.id, utcnow()).status == "sent"
    (mail,) = mail_server.to("verval@dinsos-samarinda.example.id")
    assert name in mail["Subject"]
    assert "16 November 2026" in mail.get_payload(decode=True).decode()


def test_a_missed_deadline_with_no_mailbox_is_a_visible_failure(apps):
    group_id, _, name = reachable_group(apps, members=1, region_code="3374011001")
    event = (
        "grant.deadline_passed",
        {
            "grant": grant_snapshot(group_id, name, region_code="3374011001"),
            "stage": "verified",
            "due_at": "2026-11-16T16:00:00+00:00",
            "responsible_role": "kepala_dinas",
        },
    )
    envelope = receive(apps, event)
    (message,) = messages_of(apps, event_id=envelope["id"])
    assert message.status == "failed"
    assert "No office mailbox for the role kepala_dinas" in message.last_error


def test_an_unmatched_stage_makes_no_message(apps):
    group_id, _, name = reachable_group(apps, members=2)
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="verified")))
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        count = session.scalar(
            select(func.count()).select_from(Message).where(Message.event_id == envelope["id"])
        )
    assert count == 0


def test_a_send_interrupted_after_the_hand_off_is_failed_visibly_not_resent(apps, sms_gateway):
    from services.notifications.delivery import recover_interrupted

    group_id, (number,), name = reachable_group(apps, members=1)
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    (message,) = messages_of(apps, event_id=envelope["id"])
    context = apps["notifications"].extensions["kube"]
    stalled_at = utcnow() - timedelta(minutes=10)
    with context.db.transaction() as session:
        # As a worker killed between the provider's answer and its commit leaves it.
        session.get(Message, message.id).status = "sending"
        session.get(Message, message.id).updated_at = stalled_at
    assert deliver(delivery(apps), message.id, utcnow()).status == "skipped"
    with context.db.transaction() as session:
        assert recover_interrupted(session, context.outbox, utcnow()) >= 1
    (settled,) = messages_of(apps, id=message.id)
    assert settled.status == "failed" and "not sent again automatically" in settled.last_error
    assert outbox_count(apps, "notification.failed", message.id) == 1
    assert sms_gateway.to(national(number)) == []


def test_the_dispatcher_sends_for_what_is_due_and_not_sent_for_lately(apps):
    from services.notifications.delivery import due_messages

    group_id, _, name = reachable_group(apps, members=2)
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    made = messages_of(apps, event_id=envelope["id"])
    context = apps["notifications"].extensions["kube"]
    now = utcnow()
    with context.db.transaction() as session:
        # One whose first send was lost with Redis; one held for quiet hours.
        session.get(Message, made[0].id).dispatched_at = now - timedelta(minutes=5)
        session.get(Message, made[1].id).send_after = now + timedelta(hours=8)
    with context.db.transaction() as session:
        due = due_messages(session, now)
        again = due_messages(session, now + timedelta(seconds=10))
    assert made[0].id in due and made[1].id not in due
    assert made[0].id not in again


def test_a_member_who_reads_english_gets_the_english_text(apps):
    group_id, _, name = reachable_group(apps, members=1, language="en")
    envelope = receive(apps, stage_changed(grant_snapshot(group_id, name, stage="approved")))
    (message,) = messages_of(apps, event_id=envelope["id"])
    assert message.language == "en" and "APPROVED" in message.body
