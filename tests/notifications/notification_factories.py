"""Factories for the notification service's tests: groups with reachable members, and grant
events as the grant service signs and sends them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from services.notifications.delivery import Delivery
from services.notifications.handlers import apply_group_snapshot
from services.notifications.providers.config import providers_from_env
from shared.events.contracts import contract_for
from shared.events.envelope import new_envelope
from shared.events.signing import sign


def phone() -> str:
    return f"+62813{random.randint(10_000_000, 99_999_999)}"


def national(e164: str) -> str:
    return "0" + e164[3:]


def reachable_group(
    apps, *, members=3, region_code="6472011001", status="active", name=None, language="id"
):
    """A group projected into notifications; returns (group_id, [phones])."""
    group_id = uuid.uuid4()
    phones = [phone() for _ in range(members)]
    roles = ["ketua", "sekretaris", "bendahara", *["anggota"] * members][:members]
    payload = {
        "group": {
            "group_id": str(group_id),
            "version": 1,
            "name": name or f"KUBE Uji {uuid.uuid4().hex[:6]}",
            "region_code": region_code,
            "status": status,
            "business_type": "tempe",
            "member_count": members,
            "members": [
                {
                    "member_id": str(uuid.uuid4()),
                    "name": f"Anggota {i}",
                    "role": role,
                    "nik_masked": "6472********0001",
                    "phone": number,
                    "email": None,
                    "language": language,
                }
                for i, (role, number) in enumerate(zip(roles, phones, strict=True))
            ],
        }
    }
    loaded = contract_for("group.registered").schema().load(payload)
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        apply_group_snapshot(session, loaded, {})
    return group_id, phones, payload["group"]["name"]


def grant_snapshot(
    group_id, group_name, *, stage="submitted", amount=20_000_000, region_code="6472011001"
):
    return {
        "grant_id": str(uuid.uuid4()),
        "version": 2,
        "program_id": str(uuid.uuid4()),
        "group_id": str(group_id),
        "group_name": group_name,
        "region_code": region_code,
        "stage": stage,
        "amount": amount,
        "workflow_key": "regional",
        "workflow_version": 1,
        "due_at": None,
    }


def stage_changed(grant: dict, *, source="draft", comment=None, action="submit") -> tuple:
    return "grant.stage_changed", {
        "grant": grant,
        "from": source,
        "to": grant["stage"],
        "action": action,
        "actor_role": "pendamping",
        "comment": comment,
    }


def disbursed(grant: dict) -> tuple:
    return "grant.disbursed", {
        "grant": {**grant, "stage": "disbursed"},
        "amount": grant["amount"],
        "transfer_reference": "BRI-TRX-77",
        "transfer_date": "2026-11-25",
        "report_due_at": datetime(2026, 12, 25, 16, tzinfo=UTC).isoformat(),
    }


def signed(apps, event: tuple) -> dict:
    """The event as the grant service would send it: in its envelope, signed."""
    event_type, payload = event
    envelope = new_envelope(event_type, payload, source="grants", correlation_id=None)
    key = apps["notifications"].extensions["kube"].settings.event_signing_keys[0]
    envelope["signature"] = sign(envelope, key)
    return envelope


def receive(apps, event: tuple) -> dict:
    """Hand the event to the notification service's consumer, as its worker does."""
    envelope = signed(apps, event)
    apps["notifications"].extensions["kube"].consumer.handle(envelope)
    return envelope


def delivery(apps, **overrides) -> Delivery:
    """The worker's delivery, built from this run's provider settings, in this process."""
    context = apps["notifications"].extensions["kube"]
    providers = providers_from_env()
    values = {
        "db": context.db,
        "outbox": context.outbox,
        "sms": providers.sms,
        "email": providers.email,
        "limiter": providers.limiter(context.redis, f"{context.settings.queue_prefix}:rl"),
        "max_attempts": 3,
        "backoff_seconds": 0.1,
        "backoff_max_seconds": 1.0,
    }
    values.update(overrides)
    return Delivery(**values)


def members_of(apps, group_id) -> list[tuple[str, str | None]]:
    """The group's projected members as (member id, phone), in the order they were made."""
    from sqlalchemy import select

    from services.notifications.models import Contact

    with apps["notifications"].extensions["kube"].db.transaction() as session:
        rows = session.execute(
            select(Contact.member_id, Contact.phone, Contact.name)
            .where(Contact.group_id == group_id)
            .order_by(Contact.name)
        ).all()
    return [(str(member_id), phone) for member_id, phone, _ in rows]


def stored_message(
    apps,
    *,
    group_id,
    region_code: str,
    recipient_key: str,
    status: str,
    channel: str = "sms",
    recipient: str = "+6281300000000",
    created_at: datetime | None = None,
) -> uuid.UUID:
    """A message row as delivery leaves it in `status` (made now, or at `created_at`)."""
    from services.notifications.models import Message

    message = Message(
        id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        event_type="grant.stage_changed",
        recipient_key=recipient_key,
        recipient=recipient,
        channel=channel,
        language="id",
        body="Uji laporan",
        status=status,
        group_id=group_id,
        region_code=region_code,
    )
    if created_at is not None:
        message.created_at = created_at
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        session.add(message)
    return message.id


def opted_out(apps, phone_number: str) -> None:
    """Put a number on the opt-out list, as POST /opt-outs does."""
    from services.notifications.models import OptOut

    with apps["notifications"].extensions["kube"].db.transaction() as session:
        session.add(OptOut(phone=phone_number, source="api"))
