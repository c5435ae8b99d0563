"""The registry through a client generated from its own OpenAPI document (openapi-python-client),
as another team would use it: every answer parses into the document's types, errors included,
and a PATCH the client builds changes only what it was given."""

from __future__ import annotations

import uuid

import pytest

from registry_factories import member_payload
from support import client_of, generated_client


@pytest.fixture(scope="module")
def registry_client(apps, tmp_path_factory):
    return generated_client(apps["registry"], "registry_client", tmp_path_factory.mktemp("gen"))


@pytest.fixture
def pendamping(registry_client, apps, token):
    return client_of(registry_client, apps["registry"], token("pendamping", region="6472"))


@pytest.fixture
def verifier(registry_client, apps, token):
    return client_of(registry_client, apps["registry"], token("verifikator", region="6472"))


def test_a_group_is_registered_staffed_activated_and_paged_through_the_generated_client(
    registry_client, pendamping, verifier, unique
):
    from registry_client.api.groups import (
        change_group_status,
        create_group,
        get_group,
        list_groups,
    )
    from registry_client.api.members import add_member, get_member, list_members
    from registry_client.models import (
        BankAccount,
        GroupAction,
        GroupDetail,
        GroupInput,
        GroupPage,
        GroupStatus,
        GroupStatusChange,
        Member,
        MemberInput,
        MemberPage,
        MemberRole,
        Officer,
    )

    name = unique("KUBE Klien")
    created = create_group.sync_detailed(
        client=pendamping,
        body=GroupInput(
            name=name,
            region_code="64.72.01.1001",
            business_type="tempe",
            bank_account=BankAccount("BRI", "002101000123305", "KUBE Klien"),
        ),
    )
    assert created.status_code == 201
    group = created.parsed
    assert isinstance(group, GroupDetail) and group.status is GroupStatus.DRAFT
    assert group.revenue_direction is None and group.last_visit is None
    assert isinstance(group.bank_account, BankAccount)
    assert group.region_code == "6472011001"
    assert created.headers["ETag"] == f'"{group.version}"'
    assert created.headers["Location"] == f"/api/v1/groups/{group.id}"
    assert created.headers["X-Request-ID"]

    roles = [MemberRole.KETUA, MemberRole.SEKRETARIS, MemberRole.BENDAHARA] + [
        MemberRole.ANGGOTA
    ] * 2
    members = []
    for role in roles:
        added = add_member.sync_detailed(
            group.id, client=pendamping, body=MemberInput.from_dict(member_payload(role=role.value))
        )
        assert added.status_code == 201 and isinstance(added.parsed, Member)
        assert added.parsed.role is role and added.parsed.nik.count("*") == 8
        assert added.headers["Location"] == f"/api/v1/groups/{group.id}/members/{added.parsed.id}"
        members.append(added.parsed)

    read = get_group.sync_detailed(group.id, client=pendamping)
    assert read.status_code == 200 and read.parsed.member_count == 5
    ketua = read.parsed.officers.ketua
    assert isinstance(ketua, Officer) and ketua.member_id == members[0].id
    assert ketua.name == members[0].name

    activated = change_group_status.sync(
        group.id,
        client=verifier,
        body=GroupStatusChange(action=GroupAction.ACTIVATE, reason="verval lengkap"),
    )
    assert isinstance(activated, GroupDetail) and activated.status is GroupStatus.ACTIVE

    seen, page_number = [], 1
    while True:
        page = list_members.sync(group.id, client=pendamping, page=page_number, page_size=2)
        assert isinstance(page, MemberPage) and page.total == 5 and len(page.items) <= 2
        seen += [m.id for m in page.items]
        if page_number * page.page_size >= page.total:
            break
        page_number += 1
    assert (page_number, seen) == (3, [m.id for m in members])

    listed = list_groups.sync(client=pendamping, status=GroupStatus.ACTIVE, q=name.split()[-1])
    assert isinstance(listed, GroupPage) and [g.id for g in listed.items] == [group.id]
    member = get_member.sync(group.id, members[3].id, client=verifier)
    assert member.nik.isdigit() and len(member.nik) == 16  # a verifier sees it in full


def test_changing_a_ketuas_phone_sends_only_the_phone_and_a_stale_etag_is_a_typed_412(
    registry_client, pendamping, make_group
):
    from registry_client.api.members import add_member, get_member, update_member
    from registry_client.models import MemberInput, MemberPatch, MemberRole, Problem

    group = make_group()
    ketua = add_member.sync(
        uuid.UUID(group["id"]),
        client=pendamping,
        body=MemberInput.from_dict(member_payload(role="ketua", language="en")),
    )
    patch = MemberPatch(phone="0813 1234 5678")
    assert patch.to_dict() == {"phone": "0813 1234 5678"}  # no defaults ride along

    read = get_member.sync_detailed(ketua.group_id, ketua.id, client=pendamping)
    changed = update_member.sync_detailed(
        ketua.group_id, ketua.id, client=pendamping, body=patch, if_match=read.headers["ETag"]
    )
    assert changed.status_code == 200
    assert changed.parsed.role is MemberRole.KETUA and changed.parsed.phone == "+6281312345678"
    assert changed.parsed.language.value == "en"

    stale = update_member.sync_detailed(
        ketua.group_id,
        ketua.id,
        client=pendamping,
        body=MemberPatch(phone="081399990000"),
        if_match=read.headers["ETag"],
    )
    assert stale.status_code == 412 and isinstance(stale.parsed, Problem)
    assert stale.parsed.status == 412 and stale.parsed.current_etag == changed.headers["ETag"]


def test_invalid_fields_and_a_missing_group_are_typed_problems(registry_client, pendamping):
    from registry_client.api.groups import create_group, get_group
    from registry_client.models import FieldError, GroupInput, Problem

    invalid = create_group.sync_detailed(
        client=pendamping, body=GroupInput(name="x", region_code="64.72")
    )
    assert invalid.status_code == 422 and isinstance(invalid.parsed, Problem)
    assert all(isinstance(e, FieldError) for e in invalid.parsed.errors)
    assert {e.field for e in invalid.parsed.errors} == {"name", "region_code"}

    missing = get_group.sync_detailed(uuid.uuid4(), client=pendamping)
    assert missing.status_code == 404 and isinstance(missing.parsed, Problem)
    assert missing.parsed.title == "Not Found"
    assert missing.headers["Content-Type"] == "application/problem+json"


def test_a_retried_post_is_answered_once_and_says_it_was_replayed(
    registry_client, pendamping, make_group
):
    from registry_client.api.members import add_member
    from registry_client.models import MemberInput

    group = make_group()
    body = MemberInput.from_dict(member_payload())
    key = uuid.uuid4().hex
    first = add_member.sync_detailed(
        uuid.UUID(group["id"]), client=pendamping, body=body, idempotency_key=key
    )
    again = add_member.sync_detailed(
        uuid.UUID(group["id"]), client=pendamping, body=body, idempotency_key=key
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.parsed.id == first.parsed.id
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
