"""Registering groups and describing them to other services."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.registry.models import Group
from shared.events.outbox import Outbox


def group_snapshot(group: Group) -> dict:
    """The state other services keep of a group (the payload of group.* events)."""
    return {
        "group_id": group.id,
        "version": group.version,
        "name": group.name,
        "region_code": group.region_code,
        "status": group.status,
        "business_type": group.business_type,
        "member_count": 0,
        "members": [],
    }


def register_group(session: Session, outbox: Outbox, data: dict) -> Group:
    """Create a group in draft and announce it as group.registered."""
    group = Group(**data, status="draft", version=1)
    session.add(group)
    session.flush()
    outbox.add(session, "group.registered", {"group": group_snapshot(group)})
    return group
