"""From an event to messages, and from a message to its provider.

An event's matching rules name an audience and a template; each recipient gets one row in
`messages` (the database refuses a second for the same event, recipient and channel). A
delivery takes a queued row, marks it `sending` in one short transaction, hands it to the
provider outside any transaction, and records the answer in a second one: sent, queued again
with a backoff (a transient failure), or failed (a permanent one, or attempts used up).

The one gap no design closes: a worker killed after the provider accepted a message and
before the second transaction commits leaves the row `sending`. It is not sent again
automatically (that could send it twice); `recover_interrupted` marks it failed, saying so,
after a lease, and a provider's delivery receipt for its reference still marks it delivered.
"""

from __future__ import annotations

import contextvars
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from sqlalchemy import String, Uuid, and_, case, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.notifications.models import (
    Contact,
    Message,
    OfficeMailbox,
    OptOut,
    Rule,
    Template,
    TemplateVersion,
)
from services.notifications.providers.base import (
    PermanentProviderError,
    ProviderError,
    SendResult,
    TransientProviderError,
    mask_number,
)
from services.notifications.sms_text import sms_length
from services.notifications.templates import DEFAULT_LANGUAGE, render
from shared.config import env_str
from shared.db import utcnow
from shared.errors import Conflict
from shared.events.consumer import backoff_delay
from shared.events.outbox import Outbox
from shared.shapes import OFFICER_ROLES
from shared.timezones import zone_of

log = logging.getLogger(__name__)

AUDIENCES = ("all_members", "officers", "ketua", "office_mailbox")
STATUSES = ("queued", "sending", "sent", "delivered", "failed")
# Quiet hours in the recipient's zone: no SMS from 21:00 to 07:00 unless critical.
QUIET_START, QUIET_END = time(21, 0), time(7, 0)
# A message left `sending` longer than this was interrupted mid-hand-off.
SENDING_LEASE = timedelta(minutes=5)
DISPATCH_AGAIN_AFTER = timedelta(minutes=2)
# Where a transaction keeps the ids of the messages it made, for the send after its commit.
NEW_MESSAGES = "kube_new_messages"


def quiet_hours_on() -> bool:
    """KUBE_QUIET_HOURS (on by default): hold non-critical SMS from 21:00 to 07:00 local."""
    return env_str("KUBE_QUIET_HOURS", "on").lower() not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class Recipient:
    key: str
    address: str
    name: str | None
    language: str


def mask(address: str | None) -> str:
    """A phone as `+62812****7890`, an email as `s***@dinsos.go.id`: for lists and logs."""
    if not address:
        return ""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    return mask_number(address)


def send_after(now: datetime, region_code: str, *, critical: bool, channel: str, quiet: bool):
    """When a message may go: at once, or when the recipient's quiet hours end."""
    if channel != "sms" or critical or not quiet:
        return now
    local = now.astimezone(zone_of(region_code))
    if QUIET_END <= local.time() < QUIET_START:
        return now
    morning = local.date() if local.time() < QUIET_END else local.date() + timedelta(days=1)
    return datetime.combine(morning, QUIET_END, tzinfo=local.tzinfo)


def matching_rules(session: Session, event_type: str, payload: dict) -> list[tuple[Row, dict]]:
    """The enabled rules of an event (for a stage change, of the stage it reached), each with
    its template's current version per language, in one query (plain rows: this runs for
    every event, on the way from a transition to its SMS)."""
    statement = (
        select(
            Rule.id,
            Rule.audience,
            Rule.channel,
            Rule.template_key,
            Rule.critical,
            Template.id.label("template_id"),
            Template.language,
            TemplateVersion.version,
            TemplateVersion.subject,
            TemplateVersion.body,
        )
        .outerjoin(
            Template, and_(Template.key == Rule.template_key, Template.channel == Rule.channel)
        )
        .outerjoin(
            TemplateVersion,
            and_(
                TemplateVersion.template_id == Template.id,
                TemplateVersion.version == Template.version,
            ),
        )
        .where(Rule.enabled, Rule.event_type == event_type)
    )
    if event_type == "grant.stage_changed":
        statement = statement.where(or_(Rule.stage.is_(None), Rule.stage == payload["to"]))
    found: dict[int, tuple[Row, dict]] = {}
    for row in session.execute(statement.order_by(Rule.id)):
        _, languages = found.setdefault(row.id, (row, {}))
        if row.version is not None:
            languages[row.language] = row
    return list(found.values())


def template_data(payload: dict) -> dict:
    """What the event tells a template."""
    grant = payload.get("grant") or {}
    return {
        "group_name": grant.get("group_name", ""),
        "amount": payload.get("amount", grant.get("amount")),
        "stage": grant.get("stage", ""),
        "reason": payload.get("comment") or "",
        "transfer_date": payload.get("transfer_date") or "",
        "transfer_reference": payload.get("transfer_reference") or "",
        "due_at": _last_day(
            payload.get("due_at") or payload.get("report_due_at") or grant.get("due_at"),
            grant.get("region_code"),
        ),
        "deadline_stage": payload.get("stage", ""),
        "responsible_role": payload.get("responsible_role", ""),
        "grant_ref": str(grant.get("grant_id", ""))[:8].upper(),
        "text": payload.get("text", ""),
    }


def _last_day(due_at, region_code: str | None) -> str:
    """A deadline is the midnight that ends its last day: people are told that day."""
    if not due_at:
        return ""
    moment = datetime.fromisoformat(due_at) if isinstance(due_at, str) else due_at
    return (moment - timedelta(seconds=1)).astimezone(zone_of(region_code)).date().isoformat()


def recipients_of(
    session: Session, audience: str, channel: str, group_id, region_code: str, role: str | None
) -> list[Recipient]:
    """Who an audience is, with the address the channel needs (members without one are left
    out: they cannot be reached on that channel)."""
    if audience == "office_mailbox":
        mailbox = _mailbox(session, region_code, role or "admin")
        return [Recipient(mailbox.email, mailbox.email, role, "id")] if mailbox else []
    statement = (
        select(Contact.member_id, Contact.name, Contact.phone, Contact.email, Contact.language)
        .where(Contact.group_id == group_id)
        .order_by(Contact.member_id)
    )
    if audience == "officers":
        statement = statement.where(Contact.role.in_(OFFICER_ROLES))
    elif audience == "ketua":
        statement = statement.where(Contact.role == "ketua")
    found = []
    for contact in session.execute(statement):
        address = contact.phone if channel == "sms" else contact.email
        if address:
            found.append(Recipient(str(contact.member_id), address, contact.name, contact.language))
    return found


def _mailbox(session: Session, region_code: str, role: str) -> OfficeMailbox | None:
    """The mailbox of the narrowest region containing `region_code` ("" is everywhere)."""
    prefixes = [region_code[:n] for n in (10, 6, 4, 2, 0)]
    return session.scalar(
        select(OfficeMailbox)
        .where(OfficeMailbox.role == role, OfficeMailbox.region_code.in_(prefixes))
        .order_by(OfficeMailbox.region_code.desc())
        .limit(1)
    )


def create_messages(
    session: Session,
    event_id: uuid.UUID,
    event_type: str,
    payload: dict,
    *,
    now: datetime,
    quiet: bool,
) -> list[uuid.UUID]:
    """A message per rule and recipient of the event; the ids of those made (a redelivered
    event makes none)."""
    grant = payload.get("grant") or {}
    group_id, region_code = grant.get("group_id"), grant.get("region_code", "")
    data = template_data(payload)
    made: list[uuid.UUID] = []
    for rule, templates in matching_rules(session, event_type, payload):
        people = recipients_of(
            session,
            rule.audience,
            rule.channel,
            group_id,
            region_code,
            payload.get("responsible_role"),
        )
        if not people and rule.audience == "office_mailbox":
            made += _unreachable(session, event_id, event_type, rule, grant, payload, now)
        # A rule's messages are inserted by one statement (sent as one INSERT of many rows).
        rows = []
        for person in people:
            values = _message_values(rule, person, data, grant, now, quiet, templates)
            if values is not None:
                rows.append({"event_id": event_id, "event_type": event_type, **values})
        if rows:
            made += (
                session.execute(
                    # The table, not the mapped class: a plain multi-row INSERT, no ORM bulk step.
                    insert(Message.__table__)
                    .on_conflict_do_nothing(constraint="uq_messages_one_per_event")
                    .returning(Message.__table__.c.id),
                    rows,
                )
                .scalars()
                .all()
            )
    return made


def _message_values(rule, person, data, grant, now, quiet, templates) -> dict | None:
    # The recipient's language, else Indonesian.
    found = templates.get(person.language) or templates.get(DEFAULT_LANGUAGE)
    if found is None:
        log.error("no template", extra={"template": rule.template_key, "channel": rule.channel})
        return None
    subject, body = render(
        found.body,
        found.subject,
        {**data, "member_name": person.name or ""},
        language=found.language,
        region_code=grant.get("region_code"),
    )
    encoding, _, parts = sms_length(body)
    region_code = grant.get("region_code", "")
    return {
        "id": uuid.uuid4(),
        "recipient_key": person.key,
        "recipient": person.address,
        "recipient_name": person.name,
        "channel": rule.channel,
        "template_id": found.template_id,
        "template_version": found.version,
        "language": found.language,
        "subject": subject,
        "body": body,
        "encoding": encoding if rule.channel == "sms" else None,
        "sms_parts": parts if rule.channel == "sms" else None,
        "critical": rule.critical,
        "status": "queued",
        "group_id": grant.get("group_id"),
        "grant_id": grant.get("grant_id"),
        "region_code": region_code,
        "send_after": send_after(
            now, region_code, critical=rule.critical, channel=rule.channel, quiet=quiet
        ),
        "dispatched_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _unreachable(session, event_id, event_type, rule, grant, payload, now) -> list[uuid.UUID]:
    """No mailbox for the responsible role: a failed message says so, where officers look."""
    role = payload.get("responsible_role") or "admin"
    error = f"No office mailbox for the role {role} covers region {grant.get('region_code')}."
    session.execute(
        insert(Message)
        .values(
            id=uuid.uuid4(),
            event_id=event_id,
            event_type=event_type,
            recipient_key=f"mailbox:{role}",
            recipient="",
            channel=rule.channel,
            language="id",
            body="",
            critical=rule.critical,
            status="failed",
            last_error=error,
            group_id=grant.get("group_id"),
            grant_id=grant.get("grant_id"),
            region_code=grant.get("region_code", ""),
            failed_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(constraint="uq_messages_one_per_event")
    )
    log.warning("message unreachable", extra={"event_type": event_type, "error": error})
    return []


# --- Delivery -------------------------------------------------------------------------------


@dataclass
class Delivery:
    """What a delivery works with: the database, the outbox, the provider clients and the rate
    limiter, the retry policy, and how many provider calls one worker keeps in flight."""

    db: object
    outbox: Outbox
    sms: object
    email: object
    limiter: object
    max_attempts: int = 5
    backoff_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    concurrency: int = 8
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def client(self, channel: str):
        return self.sms if channel == "sms" else self.email

    def pool(self) -> ThreadPoolExecutor:
        """The threads that wait on providers (made once, in the process that delivers)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="deliver")
        return self._pool


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery: `retry_in` seconds when it should be tried again."""

    status: str
    retry_in: float | None = None


@dataclass(frozen=True)
class _Handover:
    """A claimed message, as its provider call needs it (read before the claim commits)."""

    id: uuid.UUID
    channel: str
    recipient: str
    subject: str | None
    body: str


def event_payload(message) -> dict:
    """What `notification.sent` and `notification.failed` say of a message (a Message or a
    row with the same names)."""
    return {
        "message_id": message.id,
        "event_id": message.event_id,
        "event_type": message.event_type,
        "channel": message.channel,
        "status": message.status,
        "recipient_masked": mask(message.recipient),
        "group_id": message.group_id,
        "grant_id": message.grant_id,
        "region_code": message.region_code,
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "attempts": message.attempts,
        "error": message.last_error,
    }


def announce(outbox: Outbox, session: Session, message: Message, event_type: str) -> None:
    """Record the message's outcome as `notification.sent` or `notification.failed`."""
    outbox.add(session, event_type, event_payload(message))


def _fail(session: Session, delivery: Delivery, message: Message, error: str, now) -> Outcome:
    message.status, message.last_error, message.failed_at = "failed", error[:2000], now
    announce(delivery.outbox, session, message, "notification.failed")
    return Outcome("failed")


def deliver(delivery: Delivery, message_id: uuid.UUID, now: datetime) -> Outcome:
    """Send one queued message, once."""
    return deliver_many(delivery, [message_id], now)[message_id]


def deliver_many(delivery: Delivery, message_ids, now: datetime) -> dict[uuid.UUID, Outcome]:
    """Send each queued message of `message_ids` once: claimed together by one statement,
    handed to their providers several at a time, their answers recorded together in a
    second transaction. Each message's outcome is its own: one failing holds up no other."""
    ids = list(dict.fromkeys(message_ids))
    outcomes: dict[uuid.UUID, Outcome] = {}
    claimed = _claim(delivery, ids, now, outcomes)
    answers = _hand_over(delivery, claimed)
    if answers:
        with delivery.db.transaction() as session:
            _record(session, delivery, answers, now, outcomes)
    for message_id in ids:
        # Not queued (sent, failed, or another worker has it), or its answer is unknown.
        outcomes.setdefault(message_id, Outcome("skipped"))
    return outcomes


def _claim(delivery: Delivery, ids, now, outcomes) -> list[_Handover]:
    """Mark the due, allowed messages `sending` in one statement, then keep as many as the
    providers' rate limits allow (the rest go back to `queued`, due when a slot frees up)."""
    table = Message.__table__
    opted_out = select(OptOut.phone).where(OptOut.phone == table.c.recipient).exists()
    takeable = (
        select(table.c.id)
        .where(
            table.c.id.in_(ids),
            table.c.status == "queued",
            table.c.send_after <= now,
            or_(table.c.channel != "sms", table.c.critical, ~opted_out),
        )
        .with_for_update(skip_locked=True)
    )
    with delivery.db.autocommit() as session:
        taken = session.execute(
            update(table)
            .where(table.c.id.in_(takeable.scalar_subquery()))
            .values(status="sending", attempts=table.c.attempts + 1, provider=None, updated_at=now)
            .returning(
                table.c.id,
                table.c.channel,
                table.c.recipient,
                table.c.subject,
                table.c.body,
                table.c.created_at,
            )
        ).all()
    if len(taken) < len(ids):
        _settle_untaken(delivery, set(ids) - {row.id for row in taken}, now, outcomes)
    ready: dict[str, list] = {}
    for row in sorted(taken, key=lambda row: row.created_at):
        ready.setdefault(delivery.client(row.channel).name, []).append(row)
    claimed = []
    for provider, waiting in ready.items():
        granted, wait = delivery.limiter.acquire_many(provider, len(waiting))
        if granted < len(waiting):
            later = [row.id for row in waiting[granted:]]
            with delivery.db.autocommit() as session:
                session.execute(
                    update(table)
                    .where(table.c.id.in_(later), table.c.status == "sending")
                    .values(
                        status="queued",
                        attempts=table.c.attempts - 1,
                        send_after=now + timedelta(seconds=wait),
                    )
                )
            outcomes.update((message_id, Outcome("deferred", wait)) for message_id in later)
        claimed += [
            _Handover(row.id, row.channel, row.recipient, row.subject, row.body)
            for row in waiting[:granted]
        ]
    return claimed


def _settle_untaken(delivery: Delivery, ids: set, now, outcomes) -> None:
    """Why a queued message was not taken: not due yet (deferred), or its number opted out
    (failed now, with its event); anything else is sent, failed, or another worker's."""
    with delivery.db.transaction() as session:
        rows = session.execute(
            select(Message, OptOut.phone.label("opted_out"))
            .outerjoin(OptOut, and_(Message.channel == "sms", OptOut.phone == Message.recipient))
            .where(Message.id.in_(ids), Message.status == "queued")
            .with_for_update(of=Message, skip_locked=True)
        ).all()
        for message, opted_out in rows:
            if message.send_after > now:
                outcomes[message.id] = Outcome(
                    "deferred", (message.send_after - now).total_seconds()
                )
            elif opted_out and not message.critical:
                outcomes[message.id] = _fail(
                    session, delivery, message, "The number opted out of SMS.", now
                )


def _hand_over(delivery: Delivery, claimed: list[_Handover]) -> dict[uuid.UUID, object]:
    """Each claimed message's answer: a SendResult or a ProviderError. A message whose call
    ended any other way is left `sending`, for `recover_interrupted` (it may have gone).

    The first message goes out at once from this thread; the rest then go several at a time
    (started together, the calls share one interpreter and would all arrive later)."""
    if not claimed:
        return {}
    first, rest = claimed[0], claimed[1:]
    answers = [_call(delivery, first)]
    if len(rest) > 1 and delivery.concurrency > 1:
        # Each call runs in a copy of this context, so its log lines keep the correlation id.
        context = contextvars.copy_context()
        answers += delivery.pool().map(
            lambda handover: context.copy().run(_call, delivery, handover), rest
        )
    else:
        answers += [_call(delivery, handover) for handover in rest]
    return {
        handover.id: answer
        for handover, answer in zip(claimed, answers, strict=True)
        if answer is not None
    }


def _call(delivery: Delivery, handover: _Handover):
    client = delivery.client(handover.channel)
    reference = str(handover.id)
    try:
        if handover.channel == "sms":
            return client.send_sms(handover.recipient, handover.body, reference)
        return client.send_email(
            handover.recipient, handover.subject or "", handover.body, reference
        )
    except (TransientProviderError, PermanentProviderError) as exc:
        return exc
    except Exception:
        log.exception(
            "provider call ended unexpectedly; the message stays sending",
            extra={"message_id": reference, "provider": client.name},
        )
        return None


# What a `sent` message's event needs, read back by the UPDATE that records it.
_ANNOUNCED = (
    "id",
    "event_id",
    "event_type",
    "channel",
    "status",
    "recipient",
    "group_id",
    "grant_id",
    "region_code",
    "provider",
    "provider_message_id",
    "attempts",
    "last_error",
)


def _record(session: Session, delivery: Delivery, answers: dict, now, outcomes) -> None:
    """Write each answer: the accepted ones `sent` with one UPDATE and their events with one
    INSERT; a failure queued again after a backoff, or failed."""
    accepted = [
        (i, a.provider, a.message_id) for i, a in answers.items() if isinstance(a, SendResult)
    ]
    if accepted:
        table = Message.__table__
        # Arrays unnested, not a VALUES list: the statement stays the same for any batch, so
        # SQLAlchemy compiles it once (a VALUES list of data is compiled for every call).
        ids, providers, references = (list(part) for part in zip(*accepted, strict=True))
        answered = (
            func.unnest(
                literal(ids, ARRAY(Uuid)),
                literal(providers, ARRAY(String)),
                literal(references, ARRAY(String)),
            )
            .table_valued("id", "provider", "provider_message_id")
            .render_derived(name="answered")
        )
        rows = session.execute(
            update(table)
            .where(table.c.id == answered.c.id)
            .values(
                # A receipt that arrived first has already made it delivered or failed.
                status=case((table.c.status == "sending", "sent"), else_=table.c.status),
                sent_at=now,
                last_error=None,
                provider=answered.c.provider,
                provider_message_id=answered.c.provider_message_id,
                updated_at=utcnow(),  # when the answer was written (`now` is the batch's start)
            )
            .returning(*(table.c[name] for name in _ANNOUNCED))
        ).all()
        delivery.outbox.add_many(session, "notification.sent", [event_payload(r) for r in rows])
        outcomes.update((row.id, Outcome("sent")) for row in rows)
    refused = {i: a for i, a in answers.items() if isinstance(a, ProviderError)}
    if refused:
        for message in session.scalars(
            select(Message).where(Message.id.in_(refused)).with_for_update()
        ):
            outcomes[message.id] = _after_failure(
                session, delivery, message, refused[message.id], now
            )


def _after_failure(session: Session, delivery: Delivery, message: Message, exc, now) -> Outcome:
    message.provider = exc.provider
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, PermanentProviderError) or message.attempts >= delivery.max_attempts:
        return _fail(session, delivery, message, error, now)
    delay = backoff_delay(
        message.attempts - 1, delivery.backoff_seconds, delivery.backoff_max_seconds
    )
    message.status, message.last_error = "queued", error[:2000]
    message.send_after, message.dispatched_at = now + timedelta(seconds=delay), now
    return Outcome("queued", delay)


def due_messages(session: Session, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    """Queued messages due now that no task was sent for lately; marked as sent for."""
    ids = session.scalars(
        select(Message.id)
        .where(
            Message.status == "queued",
            Message.send_after <= now,
            or_(
                Message.dispatched_at.is_(None), Message.dispatched_at < now - DISPATCH_AGAIN_AFTER
            ),
        )
        .order_by(Message.send_after)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if ids:
        session.execute(update(Message).where(Message.id.in_(ids)).values(dispatched_at=now))
    return list(ids)


def recover_interrupted(session: Session, outbox: Outbox, now: datetime) -> int:
    """Messages left `sending` past the lease: failed, saying why, never sent again blindly."""
    stuck = session.scalars(
        select(Message)
        .where(Message.status == "sending", Message.updated_at < now - SENDING_LEASE)
        .with_for_update(skip_locked=True)
        .limit(500)
    ).all()
    for message in stuck:
        message.status, message.failed_at = "failed", now
        message.last_error = (
            "Interrupted after it was handed to the provider; not sent again automatically "
            "(it may have arrived). Check the provider's report, then retry if needed."
        )
        announce(outbox, session, message, "notification.failed")
    return len(stuck)


def requeue(message: Message, now: datetime) -> None:
    """Send a failed message again: a new attempt, its history kept; Conflict otherwise."""
    if message.status != "failed":
        raise Conflict(
            f"Only a failed message is sent again; this one is {message.status}.",
            status_now=message.status,
        )
    if not message.recipient:
        raise Conflict(message.last_error or "The message has no recipient to send to.")
    message.status, message.failed_at = "queued", None
    message.send_after = message.dispatched_at = now


def apply_receipt(
    session: Session, outbox: Outbox, message: Message, status: str, reason: str | None, now
) -> None:
    """A provider's delivery receipt: delivered, or failed (once, with its event)."""
    if status == "delivered" and message.status != "delivered":
        message.status, message.delivered_at, message.last_error = "delivered", now, None
    elif status == "failed" and message.status not in ("failed", "delivered"):
        message.status, message.failed_at = "failed", now
        message.last_error = f"The provider reported: {reason or 'failed'}"
        announce(outbox, session, message, "notification.failed")
