"""Programmes: who sees and manages which, their validation, and their budget."""

from __future__ import annotations

from grant_factories import Office, announce_group, program_body, walk


def test_a_programmes_region_must_fit_its_funding_source(clients, auth):
    client = clients["grants"]
    cases = [
        ({"funding_source": "apbn", "region_code": "64"}, "region_code"),
        ({"funding_source": "apbd_province", "region_code": "6472"}, "region_code"),
        ({"funding_source": "apbd_regency", "region_code": None}, "region_code"),
        ({"min_members": 12, "max_members": 10}, "min_members"),
        ({"total_budget": 1.5}, "total_budget"),
        ({"workflow": "nonsense"}, "workflow"),
    ]
    for overrides, field in cases:
        response = client.post(
            "/api/v1/programs", json=program_body(**overrides), headers=auth("admin")
        )
        assert response.status_code == 422, (overrides, response.json)
        assert [e["field"] for e in response.json["errors"]] == [field], overrides


def test_an_office_manages_programmes_of_its_own_region_only(clients, auth):
    client = clients["grants"]
    regency = auth("kepala_dinas", region="6472")
    province_wide = client.post("/api/v1/programs", json=program_body(), headers=regency)
    assert province_wide.status_code == 422
    assert province_wide.json["errors"][0]["field"] == "region_code"
    national = client.post(
        "/api/v1/programs",
        json=program_body(funding_source="apbn", region_code=None),
        headers=auth("kepala_dinas", region="64"),
    )
    assert national.status_code == 422

    own = client.post(
        "/api/v1/programs",
        json=program_body(funding_source="apbd_regency", region_code="6472"),
        headers=regency,
    )
    assert own.status_code == 201, own.json
    province = client.post("/api/v1/programs", json=program_body(), headers=auth("admin")).json
    # The city office takes part in the province's programme but does not manage it.
    assert client.get(f"/api/v1/programs/{province['id']}", headers=regency).status_code == 200
    change = client.patch(
        f"/api/v1/programs/{province['id']}",
        json={"name": "Diganti kota"},
        headers={**regency, "If-Match": '"1"'},
    )
    assert change.status_code == 403
    # Another province's office does not see either.
    other = auth("kepala_dinas", region="33")
    assert client.get(f"/api/v1/programs/{own.json['id']}", headers=other).status_code == 404
    listed = client.get("/api/v1/programs?page_size=100", headers=other).json
    assert own.json["id"] not in [p["id"] for p in listed["items"]]


def test_the_budget_cannot_shrink_below_what_is_committed(clients, auth, apps):
    office = Office(clients["grants"], auth)
    program = office.program(total_budget=50_000_000)
    walk(office, office.apply(program["id"], announce_group(apps)), ["submit", "verify", "approve"])
    url = f"/api/v1/programs/{program['id']}"
    current = clients["grants"].get(url, headers=auth("admin"))
    shrink = clients["grants"].patch(
        url,
        json={"total_budget": 10_000_000},
        headers={**auth("admin"), "If-Match": current.headers["ETag"]},
    )
    assert shrink.status_code == 409
    assert shrink.json["errors"][0]["field"] == "total_budget"
    stale = clients["grants"].patch(
        url, json={"total_budget": 90_000_000}, headers={**auth("admin"), "If-Match": '"0"'}
    )
    assert stale.status_code == 412
    grow = clients["grants"].patch(
        url,
        json={"total_budget": 90_000_000, "status": "closed"},
        headers={**auth("admin"), "If-Match": current.headers["ETag"]},
    )
    assert grow.status_code == 200
    budget = clients["grants"].get(f"{url}/budget", headers=auth("auditor")).json
    assert budget["available"] == 70_000_000
