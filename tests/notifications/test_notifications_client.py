"""Recipient groups through a client generated from notifications' own OpenAPI document."""

from __future__ import annotations

import uuid

import pytest

from services.notifications.handlers import apply_group_snapshot
from shared.events.contracts import contract_for

from support import client_of, generated_client, group_snapshot, member_contact


@pytest.fixture(scope="module")
def notifications_client(apps, tmp_path_factory):
    return generated_client(
        apps["notifications"], "notifications_client", tmp_path_factory.mktemp("gen")
    )


def test_recipient_groups_read_through_the_generated_client(notifications_client, apps, token):
    from notifications_client.api.recipient_groups import (
        get_recipient_group,
        list_recipient_groups,
    )
    from notifications_client.models import (
        GroupStatus,
        Language,
        MemberRole,
        Problem,
        RecipientGroup,
        RecipientGroupPage,
    )

    client = client_of(notifications_client, apps["notifications"], token("admin"))
    group_id = uuid.uuid4()
    siti = member_contact(uuid.uuid4(), role="bendahara", name="Siti", phone="+6281111111111")
    payload = (
        contract_for("group.updated")
        .schema()
        .load(group_snapshot(group_id, 2, status="suspended", members=[siti]))
    )
    with apps["notifications"].extensions["kube"].db.transaction() as session:
        apply_group_snapshot(session, payload, {})

    group = get_recipient_group.sync(group_id, client=client)
    assert isinstance(group, RecipientGroup) and group.status is GroupStatus.SUSPENDED
    (contact,) = group.contacts
    assert contact.role is MemberRole.BENDAHARA and contact.language is Language.ID
    assert contact.phone == "+6281111111111"

    page = list_recipient_groups.sync(client=client, page_size=100)
    assert isinstance(page, RecipientGroupPage) and group_id in {g.id for g in page.items}

    missing = get_recipient_group.sync_detailed(uuid.uuid4(), client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, Problem)
