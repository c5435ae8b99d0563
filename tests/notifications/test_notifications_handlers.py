"""Notifications' contacts: the newest snapshot's members, replacing the old ones."""

from __future__ import annotations

import uuid

from services.notifications.handlers import apply_group_snapshot
from services.notifications.models import RecipientGroup
from shared.events.contracts import contract_for

from support import group_snapshot, member_contact


def apply(apps, payload):
    payload = contract_for("group.updated").schema().load(payload)
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        apply_group_snapshot(session, payload, {})


def contacts(apps, group_id):
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        group = session.get(RecipientGroup, group_id)
        return {(c.name, c.phone) for c in group.contacts}


def test_contacts_follow_the_newest_snapshot(apps):
    group_id = uuid.uuid4()
    siti = member_contact(uuid.uuid4(), name="Siti", phone="+6281111111111")
    budi = member_contact(uuid.uuid4(), name="Budi", phone="+6282222222222")
    apply(apps, group_snapshot(group_id, 2, members=[siti, budi]))
    assert contacts(apps, group_id) == {("Siti", "+6281111111111"), ("Budi", "+6282222222222")}
    apply(apps, group_snapshot(group_id, 3, members=[siti]))  # Budi removed
    assert contacts(apps, group_id) == {("Siti", "+6281111111111")}
    apply(apps, group_snapshot(group_id, 1, members=[siti, budi]))  # a stale redelivery
    assert contacts(apps, group_id) == {("Siti", "+6281111111111")}
