"""Events grants consumes: the registry's group and member changes."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.grants.models import GroupProjection
from shared.db import utcnow
from shared.events.consumer import Handler
from shared.projections import upsert_if_newer
from shared.shapes import OFFICER_ROLES


def apply_group_snapshot(session: Session, payload: dict, envelope: dict) -> None:
    """Keep the newest known state of the group."""
    group = payload["group"]
    upsert_if_newer(
        session,
        GroupProjection,
        {
            "id": group["group_id"],
            "version": group["version"],
            "name": group["name"],
            "region_code": group["region_code"],
            "status": group["status"],
            "business_type": group["business_type"],
            "member_count": group["member_count"],
            "officers": {
                m["role"]: {"member_id": str(m["member_id"]), "name": m["name"]}
                for m in group["members"]
                if m["role"] in OFFICER_ROLES
            },
            "bank_account": group.get("bank_account"),
            "updated_at": utcnow(),
        },
    )


# Every group and member event carries the whole snapshot, so one handler serves them all.
HANDLERS: dict[str, Handler] = {
    "group.registered": apply_group_snapshot,
    "group.updated": apply_group_snapshot,
    "group.status_changed": apply_group_snapshot,
    "member.added": apply_group_snapshot,
    "member.updated": apply_group_snapshot,
    "member.removed": apply_group_snapshot,
}
