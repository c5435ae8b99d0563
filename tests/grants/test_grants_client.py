"""Grants' groups through a client generated from grants' own OpenAPI document: the registry's
group status and officer shapes, typed, and typed problems."""

from __future__ import annotations

import uuid

import pytest

from services.grants.handlers import apply_group_snapshot
from shared.events.contracts import contract_for

from support import client_of, generated_client, group_snapshot, member_contact


@pytest.fixture(scope="module")
def grants_client(apps, tmp_path_factory):
    return generated_client(apps["grants"], "grants_client", tmp_path_factory.mktemp("gen"))


def project(apps, payload: dict) -> None:
    payload = contract_for("group.updated").schema().load(payload)
    with apps["grants"].extensions["kube"].db.transaction() as session:
        apply_group_snapshot(session, payload, {})


def test_known_groups_read_through_the_generated_client(grants_client, apps, token):
    from grants_client.api.groups import get_group, list_groups
    from grants_client.models import GroupProjection as Group
    from grants_client.models import GroupProjectionPage, GroupStatus, Officer, Problem

    client = client_of(grants_client, apps["grants"], token("verifikator", region="6472"))
    group_id = uuid.uuid4()
    ketua = member_contact(uuid.uuid4(), role="ketua", name="Siti")
    project(apps, group_snapshot(group_id, 2, status="active", members=[ketua]))

    group = get_group.sync(group_id, client=client)
    assert isinstance(group, Group) and group.status is GroupStatus.ACTIVE
    assert isinstance(group.officers.ketua, Officer) and group.officers.ketua.name == "Siti"
    assert str(group.officers.ketua.member_id) == ketua["member_id"]

    page = list_groups.sync(client=client, status=GroupStatus.ACTIVE, page_size=100)
    assert isinstance(page, GroupProjectionPage) and group_id in {g.id for g in page.items}
    drafts = list_groups.sync(client=client, status=GroupStatus.DRAFT, page_size=100)
    assert group_id not in {g.id for g in drafts.items}

    missing = get_group.sync_detailed(uuid.uuid4(), client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, Problem)
