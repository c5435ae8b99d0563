"""Members: identity rules, one active group per person, officers, privacy, lookups."""

from __future__ import annotations

import pytest

from registry_factories import make_nik, member_payload
from support import outbox_events


def members_url(group_id: str) -> str:
    return f"/api/v1/groups/{group_id}/members"


def test_added_member_is_stored_normalised_and_shown_masked(clients, officer, make_group, apps):
    group = make_group()
    nik = make_nik(gender="F")
    response = clients["registry"].post(
        members_url(group["id"]),
        headers=officer,
        json=member_payload(nik=nik, phone="0812-3456-7890", email="Siti@Example.ID", role="ketua"),
    )
    assert response.status_code == 201, response.json
    member = response.json
    assert member["nik"] == nik[:4] + "********" + nik[-4:]
    assert member["gender"] == "F" and member["birth_date"] == "1985-03-12"
    assert member["phone"] == "+6281234567890"
    assert member["email"] == "Siti@example.id"
    assert member["village_code"] == "6472011001"
    event = outbox_events(apps["registry"], group["id"])[-1]
    assert event["type"] == "member.added"
    assert event["payload"]["member"]["role"] == "ketua"
    assert event["payload"]["group"]["member_count"] == 1
    assert nik not in str(event)  # events carry the masked NIK only


@pytest.mark.parametrize(
    ("nik", "why"),
    [
        ("64720112038500a1", "digits"),
        ("647201120385001", "16 digits"),
        ("6472013102850001", "date"),  # 31 February
        ("6472017203850001", "day"),  # day 72
        ("6472011203850000", "serial"),
    ],
)
def test_wrong_nik_is_422_naming_the_field(clients, officer, make_group, nik, why):
    group = make_group()
    response = clients["registry"].post(
        members_url(group["id"]), headers=officer, json=member_payload(nik=nik)
    )
    assert response.status_code == 422
    (error,) = response.json["errors"]
    assert error["field"] == "nik" and why in error["message"]


def test_gender_and_birth_date_must_agree_with_the_nik(clients, officer, make_group):
    group = make_group()
    response = clients["registry"].post(
        members_url(group["id"]),
        headers=officer,
        json=member_payload(nik=make_nik(gender="M"), gender="F", birth_date="1990-01-01"),
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"gender", "birth_date"}


def test_every_bad_member_field_is_named(clients, officer, make_group):
    group = make_group()
    response = clients["registry"].post(
        members_url(group["id"]),
        headers=officer,
        json={
            "nik": "12",
            "kk_number": "x",
            "name": "",
            "phone": "021-555-1234",
            "email": "not-an-email",
            "role": "raja",
            "village_code": "64.72",
        },
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {
        "nik",
        "kk_number",
        "name",
        "phone",
        "email",
        "role",
        "village_code",
    }


def test_duplicate_member_in_the_same_group_is_409(clients, officer, make_group, add_member):
    group = make_group()
    nik = make_nik()
    assert add_member(group["id"], nik=nik).status_code == 201
    again = add_member(group["id"], nik=nik)
    assert again.status_code == 409
    assert again.json["errors"][0]["field"] == "nik"


def test_second_active_group_for_same_nik_is_409_naming_the_other_group(make_group, add_member):
    first, second = make_group(name="KUBE Pertama"), make_group()
    nik = make_nik()
    add_member(first["id"], nik=nik)
    response = add_member(second["id"], nik=nik)
    assert response.status_code == 409
    assert response.json["group_id"] == first["id"]
    assert "KUBE Pertama" in response.json["detail"]
    assert nik not in response.json["detail"] and nik[-4:] in response.json["detail"]


def test_a_second_ketua_is_409(make_group, add_member):
    group = make_group()
    assert add_member(group["id"], role="ketua").status_code == 201
    response = add_member(group["id"], role="ketua")
    assert response.status_code == 409
    assert response.json["errors"][0]["field"] == "role"


def test_a_group_takes_no_more_than_the_maximum(make_group, add_member, apps):
    maximum = apps["registry"].extensions["kube"].settings.group_max_members
    group = make_group()
    for _ in range(maximum):
        assert add_member(group["id"]).status_code == 201
    response = add_member(group["id"])
    assert response.status_code == 409
    assert "maximum" in response.json["detail"]


def test_removed_member_can_join_another_group(clients, officer, make_group, add_member):
    first, second = make_group(), make_group()
    nik = make_nik()
    member = add_member(first["id"], nik=nik).json
    removed = clients["registry"].delete(
        f"{members_url(first['id'])}/{member['id']}", headers=officer
    )
    assert removed.status_code == 200 and removed.json["removed_at"]
    listed = clients["registry"].get(members_url(first["id"]), headers=officer).json
    assert member["id"] not in {m["id"] for m in listed["items"]} and listed["total"] == 0
    assert add_member(second["id"], nik=nik).status_code == 201


def test_dissolving_a_group_frees_its_members(clients, auth, make_group, add_member):
    first, second = make_group(), make_group()
    nik = make_nik()
    add_member(first["id"], nik=nik)
    clients["registry"].post(
        f"/api/v1/groups/{first['id']}/status",
        json={"action": "dissolve", "reason": "bubar"},
        headers=auth("admin"),
    )
    assert add_member(second["id"], nik=nik).status_code == 201
    again = add_member(first["id"])
    assert again.status_code == 409  # a dissolved group takes no members


def test_member_update_needs_the_etag_and_keeps_rules(clients, officer, make_group, add_member):
    group = make_group()
    add_member(group["id"], role="ketua")
    member = add_member(group["id"]).json
    url = f"{members_url(group['id'])}/{member['id']}"
    assert clients["registry"].patch(url, json={"name": "Budi"}, headers=officer).status_code == 428
    taken = clients["registry"].patch(
        url, json={"role": "ketua"}, headers={**officer, "If-Match": '"1"'}
    )
    assert taken.status_code == 409
    wrong = clients["registry"].patch(
        url, json={"gender": "F"}, headers={**officer, "If-Match": '"1"'}
    )
    assert wrong.status_code == 422 and wrong.json["errors"][0]["field"] == "gender"
    ok = clients["registry"].patch(
        url,
        json={"role": "sekretaris", "phone": "+628129999000"},
        headers={**officer, "If-Match": '"1"'},
    )
    assert ok.status_code == 200 and ok.json["role"] == "sekretaris"
    assert ok.headers["ETag"] == '"2"'
    stale = clients["registry"].patch(
        url, json={"name": "Lama"}, headers={**officer, "If-Match": '"1"'}
    )
    assert stale.status_code == 412


def test_a_member_patch_changes_only_what_it_sends(clients, officer, make_group, add_member):
    group = make_group()
    ketua = add_member(group["id"], role="ketua", language="en").json
    url = f"{members_url(group['id'])}/{ketua['id']}"
    changed = clients["registry"].patch(
        url, json={"phone": "081312345678"}, headers={**officer, "If-Match": '"1"'}
    )
    assert changed.status_code == 200
    kept = {k: v for k, v in changed.json.items() if k not in ("phone", "version")}
    assert kept == {k: v for k, v in ketua.items() if k not in ("phone", "version")}
    assert changed.json["role"] == "ketua" and changed.json["phone"] == "+6281312345678"


@pytest.mark.parametrize("field", ["gender", "birth_date", "village_code", "role", "nik"])
def test_a_member_patch_cannot_null_what_a_member_must_have(
    clients, officer, make_group, add_member, field
):
    group = make_group()
    member = add_member(group["id"]).json
    response = clients["registry"].patch(
        f"{members_url(group['id'])}/{member['id']}",
        json={field: None},
        headers={**officer, "If-Match": '"1"'},
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == [field]


def test_full_identity_only_for_verifiers_and_admins_and_every_read_is_logged(
    clients, auth, officer, make_group, add_member
):
    group = make_group()
    nik = make_nik()
    member = add_member(group["id"], nik=nik).json
    url = f"{members_url(group['id'])}/{member['id']}"
    masked = clients["registry"].get(url, headers=officer)
    assert masked.status_code == 200 and masked.json["nik"] != nik
    verifier = auth("verifikator", region="6472", sub="verifier-1")
    full = clients["registry"].get(url, headers={**verifier, "X-Request-ID": "read-1"})
    assert full.json["nik"] == nik and len(full.json["kk_number"]) == 16
    trail = clients["registry"].get(
        f"/api/v1/personal-data-access?member_id={member['id']}", headers=auth("auditor")
    )
    assert trail.status_code == 200
    (entry,) = trail.json["items"]
    assert entry["accessed_by"] == "verifier-1" and entry["request_id"] == "read-1"
    assert (
        clients["registry"].get("/api/v1/personal-data-access", headers=officer).status_code == 403
    )


def test_verifier_finds_a_persons_groups_by_nik_within_region(
    clients, auth, make_group, add_member
):
    group = make_group(name="KUBE Cari")
    nik = make_nik()
    add_member(group["id"], nik=nik, role="bendahara")
    found = clients["registry"].get(
        f"/api/v1/members?nik={nik}", headers=auth("verifikator", region="6472")
    )
    assert found.status_code == 200
    (membership,) = found.json["items"]
    assert membership["group_id"] == group["id"] and membership["role"] == "bendahara"
    assert membership["active"] is True and membership["nik"] != nik
    elsewhere = clients["registry"].get(
        f"/api/v1/members?nik={nik}", headers=auth("verifikator", region="6471")
    )
    assert elsewhere.json["total"] == 0
    assert (
        clients["registry"]
        .get(f"/api/v1/members?nik={nik}", headers=auth("pendamping"))
        .status_code
        == 403
    )
    bad = clients["registry"].get("/api/v1/members?nik=123", headers=auth("verifikator"))
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "nik"


def test_a_nik_taken_in_another_region_is_409_without_naming_that_group(
    clients, auth, officer, make_group, add_member
):
    nik = make_nik()
    elsewhere = (
        clients["registry"]
        .post(
            "/api/v1/groups",
            json={"name": "KUBE Rahasia Balikpapan", "region_code": "6471021003"},
            headers=auth("admin"),
        )
        .json
    )
    taken = clients["registry"].post(
        members_url(elsewhere["id"]),
        json=member_payload(nik=nik, village_code="6471021003"),
        headers=auth("admin"),
    )
    assert taken.status_code == 201
    response = add_member(make_group()["id"], nik=nik)
    assert response.status_code == 409
    assert response.json["errors"] == [
        {"field": "nik", "message": "already in another active group"}
    ]
    assert "group_id" not in response.json
    assert "Rahasia" not in response.text and elsewhere["id"] not in response.text


def test_the_access_trail_shows_only_reads_of_members_in_the_callers_region(
    clients, auth, make_group, add_member
):
    samarinda = add_member(make_group()["id"]).json
    balikpapan_group = (
        clients["registry"]
        .post(
            "/api/v1/groups",
            json={"name": "KUBE Trail Balikpapan", "region_code": "6471021003"},
            headers=auth("admin"),
        )
        .json
    )
    balikpapan = (
        clients["registry"]
        .post(
            members_url(balikpapan_group["id"]),
            json=member_payload(village_code="6471021003"),
            headers=auth("admin"),
        )
        .json
    )
    for member in (samarinda, balikpapan):
        url = f"{members_url(member['group_id'])}/{member['id']}"
        assert clients["registry"].get(url, headers=auth("admin", sub="reader")).status_code == 200
    listed = (
        clients["registry"]
        .get("/api/v1/personal-data-access?page_size=100", headers=auth("auditor", region="6472"))
        .json
    )
    members = {entry["member_id"] for entry in listed["items"]}
    assert samarinda["id"] in members and balikpapan["id"] not in members
    everywhere = (
        clients["registry"]
        .get("/api/v1/personal-data-access?page_size=100", headers=auth("auditor"))
        .json
    )
    assert {samarinda["id"], balikpapan["id"]} <= {e["member_id"] for e in everywhere["items"]}


def test_a_members_village_outside_the_callers_region_is_422(make_group, add_member):
    response = add_member(make_group()["id"], village_code="6471021003")
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["village_code"]


def test_a_members_village_outside_the_groups_district_is_422(make_group, add_member):
    response = add_member(make_group()["id"], village_code="6472021001")
    assert response.status_code == 422
    assert "district" in response.json["errors"][0]["message"]


def test_a_nik_can_be_looked_up_without_putting_it_in_a_url(clients, auth, make_group, add_member):
    group = make_group()
    nik = make_nik()
    add_member(group["id"], nik=nik)
    found = clients["registry"].post(
        "/api/v1/members/search?page_size=5",
        json={"nik": nik},
        headers=auth("verifikator", region="6472"),
    )
    assert found.status_code == 200 and found.json["total"] == 1
    assert found.json["items"][0]["group_id"] == group["id"]
    bad = clients["registry"].post(
        "/api/v1/members/search", json={"nik": "123"}, headers=auth("verifikator")
    )
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "nik"
    refused = clients["registry"].post(
        "/api/v1/members/search", json={"nik": nik}, headers=auth("pendamping")
    )
    assert refused.status_code == 403
