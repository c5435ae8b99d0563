"""Constants and helpers the tests share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:8]
JWT_SECRET = "test-secret-" + uuid.uuid4().hex
SHARED_DATA = ROOT.parent / "shared" / "data"


def wait_until(condition: Callable[[], object], timeout: float = 30, interval: float = 0.1):
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def outbox_events(app, group_id: str) -> list[dict]:
    """The events a service's outbox holds about one group, oldest first."""
    from sqlalchemy import text

    with app.extensions["kube"].db.transaction() as session:
        return list(
            session.execute(
                text(
                    "SELECT envelope FROM outbox_events "
                    "WHERE envelope->'payload'->'group'->>'group_id' = :gid ORDER BY created_at"
                ),
                {"gid": group_id},
            ).scalars()
        )


def group_snapshot(group_id, version: int, *, name="KUBE Uji", status="draft", members=()):
    """A group.* payload as the registry sends it."""
    return {
        "group": {
            "group_id": str(group_id),
            "version": version,
            "name": name,
            "region_code": "6472011001",
            "status": status,
            "business_type": "tempe",
            "member_count": len(members),
            "members": list(members),
        }
    }


def member_contact(member_id, role="anggota", phone="+6281234567890", name="Siti"):
    return {
        "member_id": str(member_id),
        "name": name,
        "role": role,
        "nik_masked": "6472********0001",
        "phone": phone,
        "email": None,
        "language": "id",
    }
