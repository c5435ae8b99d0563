"""Broadcasts: one text to every active group of a region, or to a list of groups, each
member reached once (a member's key is unique within the broadcast's messages)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.notifications.delivery import send_after
from services.notifications.models import Broadcast, Contact, Message, RecipientGroup
from services.notifications.sms_text import sms_length
from shared.errors import InvalidInput, NotFound
from shared.scope import RegionScope
from shared.shapes import OFFICER_ROLES


def create_broadcast(
    session: Session, data: dict, *, scope: RegionScope, actor: str, now: datetime, quiet: bool
) -> tuple[Broadcast, list[uuid.UUID]]:
    """The broadcast and a queued SMS per member reached; the ids to send for."""
    groups = select(RecipientGroup.id, RecipientGroup.region_code).where(
        scope.where(RecipientGroup.region_code), RecipientGroup.status == "active"
    )
    if data.get("region_code") is not None:
        scope.require(data["region_code"], field="region_code")
        groups = groups.where(RecipientGroup.region_code.startswith(data["region_code"]))
    else:
        wanted = set(data["group_ids"])
        groups = groups.where(RecipientGroup.id.in_(wanted))
        found = {row.id for row in session.execute(groups)}
        missing = sorted(str(g) for g in wanted - found)
        if missing:
            raise InvalidInput(
                "Some groups are unknown, inactive or outside your region.",
                errors=[{"field": "group_ids", "message": f"not reachable: {g}"} for g in missing],
            )
    regions = dict(session.execute(groups).all())
    broadcast = Broadcast(
        id=uuid.uuid4(),
        region_code=data.get("region_code") or scope.prefix,
        group_ids=[str(g) for g in data["group_ids"]] if data.get("group_ids") else None,
        audience=data["audience"],
        body=data["text"],
        created_by=actor,
        created_at=now,
    )
    session.add(broadcast)
    session.flush()
    contacts = select(Contact).where(
        Contact.group_id.in_(list(regions)), Contact.phone.is_not(None)
    )
    if data["audience"] == "officers":
        contacts = contacts.where(Contact.role.in_(OFFICER_ROLES))
    encoding, _, parts = sms_length(data["text"])
    rows = [
        {
            "id": uuid.uuid4(),
            "event_id": broadcast.id,
            "event_type": "broadcast",
            "recipient_key": str(contact.member_id),
            "recipient": contact.phone,
            "recipient_name": contact.name,
            "channel": "sms",
            "language": contact.language,
            "body": data["text"],
            "encoding": encoding,
            "sms_parts": parts,
            "critical": False,
            "status": "queued",
            "group_id": contact.group_id,
            "broadcast_id": broadcast.id,
            "region_code": regions[contact.group_id],
            "send_after": send_after(
                now, regions[contact.group_id], critical=False, channel="sms", quiet=quiet
            ),
            "dispatched_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for contact in session.scalars(contacts)
    ]
    made: list[uuid.UUID] = []
    for start in range(0, len(rows), 1000):
        made += (
            session.execute(
                insert(Message)
                .values(rows[start : start + 1000])
                .on_conflict_do_nothing(constraint="uq_messages_one_per_event")
                .returning(Message.id)
            )
            .scalars()
            .all()
        )
    broadcast.total = len(made)
    return broadcast, made


def find_broadcast(session: Session, broadcast_id: uuid.UUID, scope: RegionScope) -> Broadcast:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or not scope.covers(broadcast.region_code):
        raise NotFound("No broadcast with this id in your region.")
    return broadcast


def progress(session: Session, broadcast: Broadcast) -> dict:
    by_status = dict(
        session.execute(
            select(Message.status, func.count())
            .where(Message.broadcast_id == broadcast.id)
            .group_by(Message.status)
        ).all()
    )
    return {
        "id": broadcast.id,
        "region_code": broadcast.region_code,
        "group_ids": broadcast.group_ids,
        "audience": broadcast.audience,
        "body": broadcast.body,
        "total": broadcast.total,
        "by_status": by_status,
        "reached": by_status.get("sent", 0) + by_status.get("delivered", 0),
        "created_by": broadcast.created_by,
        "created_at": broadcast.created_at,
    }
