"""Grants' groups API: the registry's group statuses and officer shape."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from services.grants.handlers import apply_group_snapshot
from services.grants.models import GroupProjection
from shared.events.contracts import contract_for

from support import group_snapshot, member_contact


def project(apps, payload: dict) -> None:
    payload = contract_for("group.updated").schema().load(payload)
    with apps["grants"].extensions["kube"].db.transaction() as session:
        apply_group_snapshot(session, payload, {})


def test_a_status_filter_outside_the_group_statuses_is_422(clients, auth):
    response = clients["grants"].get("/api/v1/groups?status=nonsense", headers=auth())
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["status"]


def test_officers_kept_before_names_were_kept_read_with_no_name(clients, auth, apps):
    group_id = uuid.uuid4()
    ketua = member_contact(uuid.uuid4(), role="ketua")
    project(apps, group_snapshot(group_id, 2, members=[ketua]))
    with apps["grants"].extensions["kube"].db.transaction() as session:
        session.execute(
            update(GroupProjection)
            .where(GroupProjection.id == group_id)
            .values(officers={"ketua": ketua["member_id"]})
        )
    read = clients["grants"].get(f"/api/v1/groups/{group_id}", headers=auth())
    assert read.json["officers"] == {"ketua": {"member_id": ketua["member_id"], "name": None}}
