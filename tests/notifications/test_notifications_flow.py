"""The whole path through real processes: a group registered in the registry, its grant
moved in the grant service, and each member's SMS at the gateway, once per stage."""

from __future__ import annotations

from grant_factories import ALL_DOCUMENTS
from notification_factories import national
from registry_factories import make_nik, member_payload
from support import wait_until

BALIKPAPAN = "6471021003"


def test_members_hear_of_their_grants_stages_once_each(
    clients, auth, workers, relay, sms_gateway, unique
):
    registry, grants = clients["registry"], clients["grants"]
    officer = auth("pendamping", region="6471", sub="pendamping-bpp")
    group = registry.post(
        "/api/v1/groups",
        json={
            "name": unique("KUBE Alur"),
            "region_code": BALIKPAPAN,
            "business_type": "kerajinan",
            "bank_account": {
                "bank_name": "Bank Kaltimtara",
                "account_number": "1240012345678",
                "account_holder": "KUBE Alur",
            },
        },
        headers=officer,
    ).json
    phones = []
    for role in ("ketua", "sekretaris", "bendahara", "anggota", "anggota"):
        body = member_payload(role=role, nik=make_nik(district="647102"))
        added = registry.post(f"/api/v1/groups/{group['id']}/members", json=body, headers=officer)
        assert added.status_code == 201, added.json
        phones.append(added.json["phone"])
    activated = registry.post(
        f"/api/v1/groups/{group['id']}/status",
        json={"action": "activate", "reason": "verval lapangan"},
        headers=auth("verifikator", region="6471"),
    )
    assert activated.status_code == 200, activated.json

    def group_known_to_grants():
        relay()
        read = grants.get(f"/api/v1/groups/{group['id']}", headers=auth("auditor", region="64"))
        return read.status_code == 200 and read.json["status"] == "active"

    wait_until(group_known_to_grants, timeout=60, interval=0.3)

    program = grants.post(
        "/api/v1/programs",
        json={
            "name": unique("UEP Alur"),
            "fiscal_year": 2026,
            "funding_source": "apbd_province",
            "region_code": "64",
            "total_budget": 100_000_000,
        },
        headers=auth("admin"),
    ).json
    grant = grants.post(
        "/api/v1/grants",
        json={
            "program_id": program["id"],
            "group_id": group["id"],
            "business_plan": "Anyaman rotan",
            "documents": ALL_DOCUMENTS,
        },
        headers=officer,
    ).json

    def step(action: str, role: str, sub: str, data=None):
        nonlocal grant
        response = grants.post(
            f"/api/v1/grants/{grant['id']}/transitions",
            json={"action": action, "data": data or {}},
            headers={**auth(role, region="64", sub=sub), "If-Match": f'"{grant["version"]}"'},
        )
        assert response.status_code == 200, response.json
        grant = response.json

    step("submit", "pendamping", "pendamping-bpp")
    step("verify", "verifikator", "verval-bpp", {"checklist": ALL_DOCUMENTS})
    step("approve", "kepala_dinas", "kadis", {"decree_number": unique("SK")})

    def everyone_heard_twice():
        relay()
        return all(len(sms_gateway.to(national(p))) >= 2 for p in phones)

    wait_until(everyone_heard_twice, timeout=90, interval=0.3)
    for number in phones:
        texts = [r["message"] for r in sms_gateway.to(national(number))]
        assert len(texts) == 2, texts
        assert "sudah diajukan" in texts[0] or "sudah diajukan" in texts[1]
        assert any("DISETUJUI" in t for t in texts)
    listed = (
        clients["notifications"]
        .get(
            f"/api/v1/messages?grant_id={grant['id']}&page_size=100",
            headers=auth("auditor", region="64"),
        )
        .json
    )
    assert listed["total"] == 10
    assert {m["status"] for m in listed["items"]} == {"sent"}
