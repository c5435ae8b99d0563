"""Groups: registration, region scope, listing, optimistic locking, the status workflow."""

from __future__ import annotations

from support import outbox_events


def events_of(apps, group_id: str) -> list[dict]:
    return outbox_events(apps["registry"], group_id)


def test_registered_group_is_a_draft_with_an_etag_and_an_event(clients, officer, apps, unique):
    name = unique()
    response = clients["registry"].post(
        "/api/v1/groups",
        headers=officer,
        json={
            "name": name,
            "region_code": "64.72.01.1001",
            "business_type": "tempe",
            "founded_on": "2024-05-01",
            "address": "Jl. Mawar 3",
        },
    )
    assert response.status_code == 201
    group = response.json
    assert group["status"] == "draft" and group["region_code"] == "6472011001"
    assert group["member_count"] == 0 and group["officers"] == {}
    assert response.headers["ETag"] == '"1"'
    (event,) = events_of(apps, group["id"])
    assert event["type"] == "group.registered"
    assert event["payload"]["group"]["name"] == name
    assert event["payload"]["group"]["version"] == 1


def test_bad_group_fields_are_each_named(clients, officer):
    response = clients["registry"].post(
        "/api/v1/groups",
        headers=officer,
        json={
            "name": " ",
            "region_code": "6472001001",
            "founded_on": "2999-01-01",
            "bank_account": {"bank_name": "BRI", "account_number": "12ab"},
        },
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json["errors"]}
    assert fields == {
        "name",
        "region_code",
        "founded_on",
        "bank_account.account_number",
        "bank_account.account_holder",
    }


def test_group_outside_the_callers_region_cannot_be_registered(clients, officer, unique):
    response = clients["registry"].post(
        "/api/v1/groups", headers=officer, json={"name": unique(), "region_code": "6471011001"}
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "region_code"


def test_another_regions_group_is_invisible(clients, auth, officer, make_group, unique):
    tag = unique("Both").split()[1]
    own = make_group(name=f"KUBE {tag} Samarinda")
    other = (
        clients["registry"]
        .post(
            "/api/v1/groups",
            headers=auth("admin"),
            json={"name": f"KUBE {tag} Balikpapan", "region_code": "6471021003"},
        )
        .json
    )
    url = f"/api/v1/groups/{other['id']}"
    read = clients["registry"].get(url, headers=officer)
    assert read.status_code == 404
    assert read.mimetype == "application/problem+json"
    patch = clients["registry"].patch(
        url, json={"name": "KUBE Diubah"}, headers={**officer, "If-Match": '"1"'}
    )
    assert patch.status_code == 404
    members = clients["registry"].get(f"{url}/members", headers=officer)
    assert members.status_code == 404
    listed = clients["registry"].get(f"/api/v1/groups?q={tag}", headers=officer)
    assert [g["id"] for g in listed.json["items"]] == [own["id"]]
    assert listed.json["total"] == 1
    assert clients["registry"].get(url, headers=auth("auditor", region="64")).status_code == 200


def test_listing_filters_paginates_and_counts(clients, auth, make_group, unique):
    tag = unique("Filter").split()[1]
    for index in range(3):
        make_group(name=f"KUBE {tag} Tempe {index}", business_type="tempe")
    make_group(name=f"KUBE {tag} Jahit", business_type="tailoring")
    headers = auth("verifikator", region="6472")
    page = (
        clients["registry"]
        .get(f"/api/v1/groups?q={tag}&business_type=tempe&page_size=2&page=1", headers=headers)
        .json
    )
    assert page["total"] == 3 and len(page["items"]) == 2
    second = (
        clients["registry"]
        .get(f"/api/v1/groups?q={tag}&business_type=tempe&page_size=2&page=2", headers=headers)
        .json
    )
    assert len(second["items"]) == 1
    drafts = (
        clients["registry"]
        .get(f"/api/v1/groups?q={tag}&status=draft&region=647201", headers=headers)
        .json
    )
    assert drafts["total"] == 4
    bad = clients["registry"].get("/api/v1/groups?page_size=1000&status=sleeping", headers=headers)
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json["errors"]} == {"page_size", "status"}


def test_patch_needs_the_current_etag(clients, officer, make_group, apps):
    group = make_group()
    url = f"/api/v1/groups/{group['id']}"
    missing = clients["registry"].patch(url, json={"name": "KUBE Baru"}, headers=officer)
    assert missing.status_code == 428
    ok = clients["registry"].patch(
        url, json={"name": "KUBE Baru"}, headers={**officer, "If-Match": '"1"'}
    )
    assert ok.status_code == 200 and ok.json["name"] == "KUBE Baru"
    assert ok.headers["ETag"] == '"2"'
    stale = clients["registry"].patch(
        url, json={"name": "KUBE Lama"}, headers={**officer, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.mimetype == "application/problem+json"
    assert clients["registry"].get(url, headers=officer).json["name"] == "KUBE Baru"
    assert [e["type"] for e in events_of(apps, group["id"])] == [
        "group.registered",
        "group.updated",
    ]


def test_bank_account_is_set_and_shown(clients, officer, make_group):
    group = make_group()
    response = clients["registry"].patch(
        f"/api/v1/groups/{group['id']}",
        headers={**officer, "If-Match": '"1"'},
        json={
            "bank_account": {
                "bank_name": "BRI",
                "account_number": "002101000123305",
                "account_holder": "KUBE Tempe Makmur",
            }
        },
    )
    assert response.status_code == 200
    assert response.json["bank_account"]["account_number"] == "002101000123305"


def test_a_bank_account_is_changed_whole_or_removed_never_in_part(clients, officer, make_group):
    account = {"bank_name": "BRI", "account_number": "002101000123305", "account_holder": "KUBE"}
    group = make_group(bank_account=account)
    url = f"/api/v1/groups/{group['id']}"
    part = clients["registry"].patch(
        url, headers={**officer, "If-Match": '"1"'}, json={"bank_account": {"bank_name": "BNI"}}
    )
    assert part.status_code == 422
    assert {e["field"] for e in part.json["errors"]} == {
        "bank_account.account_number",
        "bank_account.account_holder",
    }
    other = clients["registry"].patch(url, headers={**officer, "If-Match": '"1"'}, json={})
    assert other.json["bank_account"] == account  # a field left out stays as it is
    removed = clients["registry"].patch(
        url, headers={**officer, "If-Match": '"2"'}, json={"bank_account": None}
    )
    assert removed.status_code == 200 and removed.json["bank_account"] is None


def test_a_complete_group_activates_suspends_and_dissolves(clients, auth, complete_group, apps):
    group = complete_group(extra=2)
    url = f"/api/v1/groups/{group['id']}/status"
    verifier = auth("verifikator", region="6472")
    activated = clients["registry"].post(
        url, json={"action": "activate", "reason": "verval OK"}, headers=verifier
    )
    assert activated.status_code == 200, activated.json
    assert activated.json["status"] == "active" and activated.json["member_count"] == 5
    assert set(activated.json["officers"]) == {"ketua", "sekretaris", "bendahara"}
    suspended = clients["registry"].post(
        url, json={"action": "suspend", "reason": "no report"}, headers=verifier
    )
    assert suspended.json["status"] == "suspended"
    dissolved = clients["registry"].post(
        url, json={"action": "dissolve", "reason": "bubar"}, headers=verifier
    )
    assert dissolved.json["status"] == "dissolved"
    final = clients["registry"].post(
        url, json={"action": "activate", "reason": "again"}, headers=verifier
    )
    assert final.status_code == 409
    assert "dissolved" in final.json["detail"]
    changes = [e for e in events_of(apps, group["id"]) if e["type"] == "group.status_changed"]
    assert [
        (e["payload"]["previous_status"], e["payload"]["group"]["status"]) for e in changes
    ] == [("draft", "active"), ("active", "suspended"), ("suspended", "dissolved")]


def test_activation_names_every_missing_requirement(clients, auth, make_group, add_member):
    group = make_group()
    add_member(group["id"], role="ketua")
    add_member(group["id"], role="anggota")
    # The group moved to another district while still a draft: its members' villages no
    # longer lie in the group's district.
    read = clients["registry"].get(f"/api/v1/groups/{group['id']}", headers=auth())
    moved = clients["registry"].patch(
        f"/api/v1/groups/{group['id']}",
        json={"region_code": "6472021001"},
        headers={**auth(), "If-Match": read.headers["ETag"]},
    )
    assert moved.status_code == 200
    response = clients["registry"].post(
        f"/api/v1/groups/{group['id']}/status",
        json={"action": "activate", "reason": "try"},
        headers=auth("verifikator"),
    )
    assert response.status_code == 409
    failed = {(e["guard"], e["field"]) for e in response.json["errors"]}
    assert failed == {
        ("member_count", "members"),
        ("officers_complete", "officers.sekretaris"),
        ("officers_complete", "officers.bendahara"),
        ("same_district", "members.village_code"),
    }
    assert all(e["message"] and e["message_id"] for e in response.json["errors"])


def test_illegal_transitions_are_409_and_unknown_actions_422(clients, auth, make_group):
    group = make_group()
    url = f"/api/v1/groups/{group['id']}/status"
    suspend = clients["registry"].post(
        url, json={"action": "suspend", "reason": "why not"}, headers=auth("admin")
    )
    assert suspend.status_code == 409
    unknown = clients["registry"].post(url, json={"action": "graduate"}, headers=auth("admin"))
    assert unknown.status_code == 422
    assert {e["field"] for e in unknown.json["errors"]} == {"action", "reason"}


def test_only_verifiers_heads_and_admins_change_status(clients, officer, make_group):
    group = make_group()
    response = clients["registry"].post(
        f"/api/v1/groups/{group['id']}/status",
        json={"action": "dissolve", "reason": "salah"},
        headers=officer,
    )
    assert response.status_code == 403


def test_dissolved_group_cannot_be_edited(clients, auth, make_group):
    group = make_group()
    clients["registry"].post(
        f"/api/v1/groups/{group['id']}/status",
        json={"action": "dissolve", "reason": "duplikat"},
        headers=auth("admin"),
    )
    response = clients["registry"].patch(
        f"/api/v1/groups/{group['id']}",
        json={"name": "Baru"},
        headers={**auth("admin"), "If-Match": "*"},
    )
    assert response.status_code == 409


def test_the_documented_workflow_table_is_the_one_the_code_runs():
    from services.registry.groups import GROUP_WORKFLOW

    from support import ROOT

    assert GROUP_WORKFLOW.table() in (ROOT / "docs" / "registry.md").read_text()


def _active_group(clients, auth, complete_group) -> dict:
    group = complete_group()
    activated = clients["registry"].post(
        f"/api/v1/groups/{group['id']}/status",
        json={"action": "activate", "reason": "verifikasi lapangan"},
        headers=auth("verifikator"),
    )
    assert activated.status_code == 200, activated.json
    return activated.json


def _patch(clients, auth, url: str, body: dict, headers: dict):
    etag = clients["registry"].get(url, headers=headers).headers["ETag"]
    return clients["registry"].patch(url, json=body, headers={**headers, "If-Match": etag})


def test_an_active_groups_bank_account_and_village_change_only_after_suspension(
    clients, auth, officer, complete_group
):
    group = _active_group(clients, auth, complete_group)
    url = f"/api/v1/groups/{group['id']}"
    private = {
        "bank_name": "BRI",
        "account_number": "1234567890",
        "account_holder": "Pribadi Ketua",
    }
    refused = _patch(
        clients, auth, url, {"bank_account": private, "region_code": "6472011002"}, officer
    )
    assert refused.status_code == 409
    assert {e["field"] for e in refused.json["errors"]} == {"bank_account", "region_code"}
    assert clients["registry"].get(url, headers=officer).json["bank_account"] is None
    renamed = _patch(clients, auth, url, {"address": "Jl. Baru 1"}, officer)
    assert renamed.status_code == 200  # what was not verified may change
    suspended = clients["registry"].post(
        f"{url}/status",
        json={"action": "suspend", "reason": "ganti rekening"},
        headers=auth("verifikator"),
    )
    assert suspended.status_code == 200
    assert _patch(clients, auth, url, {"bank_account": private}, officer).status_code == 200


def test_an_active_groups_members_keep_their_verified_identity(
    clients, auth, officer, complete_group
):
    group = _active_group(clients, auth, complete_group)
    members = clients["registry"].get(f"/api/v1/groups/{group['id']}/members", headers=officer)
    member = members.json["items"][0]
    url = f"/api/v1/groups/{group['id']}/members/{member['id']}"
    refused = _patch(clients, auth, url, {"name": "Orang Lain"}, officer)
    assert refused.status_code == 409
    assert [e["field"] for e in refused.json["errors"]] == ["name"]
    phone = _patch(clients, auth, url, {"phone": "081298765432"}, officer)
    assert phone.status_code == 200 and phone.json["phone"] == "+6281298765432"
