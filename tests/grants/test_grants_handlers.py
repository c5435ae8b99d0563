"""Grants' projection of groups: newest snapshot wins, whatever order events arrive in."""

from __future__ import annotations

import uuid

from services.grants.handlers import apply_group_snapshot
from services.grants.models import GroupProjection
from shared.events.contracts import contract_for

from support import group_snapshot, member_contact


def apply(apps, payload):
    payload = contract_for("group.updated").schema().load(payload)
    with apps["grants"].extensions["kube"].db.transaction() as session:
        apply_group_snapshot(session, payload, {})


def projection(apps, group_id):
    with apps["grants"].extensions["kube"].db.transaction() as session:
        return session.get(GroupProjection, group_id)


def test_newer_snapshot_replaces_and_older_one_is_ignored(apps):
    group_id = uuid.uuid4()
    ketua = member_contact(uuid.uuid4(), role="ketua")
    apply(
        apps,
        group_snapshot(
            group_id,
            3,
            name="KUBE Baru",
            status="active",
            members=[ketua, member_contact(uuid.uuid4())],
        ),
    )
    apply(apps, group_snapshot(group_id, 2, name="KUBE Lama"))  # arrives late
    kept = projection(apps, group_id)
    assert (kept.version, kept.name, kept.status, kept.member_count) == (
        3,
        "KUBE Baru",
        "active",
        2,
    )
    assert kept.officers == {"ketua": {"member_id": ketua["member_id"], "name": ketua["name"]}}
    apply(apps, group_snapshot(group_id, 4, name="KUBE Baru", status="suspended"))
    assert projection(apps, group_id).status == "suspended"


def test_a_version_that_jumps_implausibly_far_is_refused(apps):
    import pytest

    from shared.errors import PermanentError

    group_id = uuid.uuid4()
    apply(apps, group_snapshot(group_id, 3, name="KUBE Asli"))
    with pytest.raises(PermanentError, match="implausibly"):
        apply(apps, group_snapshot(group_id, 10**9, name="KUBE Palsu"))
    assert projection(apps, group_id).name == "KUBE Asli"


def test_the_groups_bank_account_is_kept_for_disbursement(apps):
    from services.grants.models import GroupProjection

    from grant_factories import announce_group

    group_id = announce_group(apps)
    with apps["grants"].extensions["kube"].db.transaction() as session:
        kept = session.get(GroupProjection, group_id)
        assert kept.bank_account == {
            "bank_name": "BRI",
            "account_number": "002101000123305",
            "account_holder": "KUBE Tempe Makmur",
        }
