"""The grant workflow through the API: both routes, every error status, guards, version
pinning and separation of duties."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from services.grants.models import AuditRecord, BudgetMovement, Program

from grant_factories import ALL_DOCUMENTS, Office, announce_group, walk

REGIONAL = [
    "submit",
    "verify",
    "approve",
    "disburse",
    "report",
    "accept_report",
    "monitor",
    "close",
]
NATIONAL = [
    "submit",
    "verify",
    "recommend",
    "approve",
    "disburse",
    "report",
    "accept_report",
    "monitor",
    "close",
]


@pytest.fixture
def office(clients, auth):
    return Office(clients["grants"], auth)


def outbox_types(apps, grant_id) -> list[str]:
    from sqlalchemy import text

    with apps["grants"].extensions["kube"].db.transaction() as session:
        return list(
            session.execute(
                text(
                    "SELECT event_type FROM outbox_events "
                    "WHERE envelope->'payload'->'grant'->>'grant_id' = :gid ORDER BY created_at"
                ),
                {"gid": str(grant_id)},
            ).scalars()
        )


@pytest.mark.parametrize(
    ("funding", "region", "route", "actions"),
    [("apbd_province", "64", "regional", REGIONAL), ("apbn", None, "national", NATIONAL)],
)
def test_a_grant_walks_its_whole_route(office, apps, funding, region, route, actions):
    program = office.program(funding_source=funding, region_code=region)
    assert program["workflow"] == route
    grant = office.apply(program["id"], announce_group(apps, members=10))
    assert grant["stage"] == "draft"
    assert grant["amount"] == 20_000_000
    assert grant["workflow"] == {"key": route, "version": 1}

    grant = walk(office, grant, actions)

    assert grant["stage"] == "closed"
    assert grant["next_actions"] == []
    history = office.client.get(
        f"/api/v1/grants/{grant['id']}/history", headers=office.headers("auditor")
    ).json
    assert [r["action"] for r in history["items"]] == ["create", *actions]
    assert [r["seq"] for r in history["items"]] == list(range(1, len(actions) + 2))
    assert all(r["workflow_version"] == 1 for r in history["items"])
    assert history["items"][0]["prev_hash"] == "0" * 64
    assert all(
        later["prev_hash"] == earlier["hash"]
        for earlier, later in zip(history["items"], history["items"][1:], strict=False)
    )
    budget = office.client.get(
        f"/api/v1/programs/{program['id']}/budget", headers=office.headers("auditor")
    ).json
    assert budget == {
        "program_id": program["id"],
        "total": 200_000_000,
        "reserved": 0,
        "disbursed": 20_000_000,
        "available": 180_000_000,
    }
    types = outbox_types(apps, grant["id"])
    assert types[0] == "grant.created"
    assert types.count("grant.stage_changed") == len(actions)
    assert types.count("grant.disbursed") == 1


def test_approval_reserves_and_rejection_releases(office, apps):
    program = office.program()
    grant = walk(
        office, office.apply(program["id"], announce_group(apps)), ["submit", "verify", "approve"]
    )
    budget_url = f"/api/v1/programs/{program['id']}/budget"
    assert (
        office.client.get(budget_url, headers=office.headers("auditor")).json["reserved"]
        == 20_000_000
    )

    office.move(grant, "reject", "kepala_dinas", sub="kepala", comment="Kelompok bubar.")

    budget = office.client.get(budget_url, headers=office.headers("auditor")).json
    assert (budget["reserved"], budget["disbursed"], budget["available"]) == (0, 0, 200_000_000)
    with apps["grants"].extensions["kube"].db.transaction() as session:
        kinds = session.scalars(
            select(BudgetMovement.kind)
            .where(BudgetMovement.grant_id == grant["id"])
            .order_by(BudgetMovement.id)
        ).all()
    assert kinds == ["reserve", "release"]


def test_an_action_not_possible_from_the_stage_is_409(office, apps):
    grant = office.apply(office.program()["id"], announce_group(apps))
    response = office.act(grant, "approve", "kepala_dinas", data={"decree_number": "SK-1"})
    assert response.status_code == 409
    assert response.json["status_now"] == "draft"


def test_a_role_that_may_not_take_the_action_is_403(office, apps):
    grant = office.apply(office.program()["id"], announce_group(apps))
    grant = office.move(grant, "submit", "pendamping")
    assert (
        office.act(grant, "verify", "bendahara", data={"checklist": ALL_DOCUMENTS}).status_code
        == 403
    )
    assert office.act(grant, "verify", "auditor").status_code == 403


def test_a_stale_or_missing_if_match_is_412_or_428(office, apps):
    grant = office.apply(office.program()["id"], announce_group(apps))
    stale = office.act(grant, "submit", "pendamping", if_match='"0"')
    assert stale.status_code == 412
    assert stale.json["current_etag"] == f'"{grant["version"]}"'
    missing = office.client.post(
        f"/api/v1/grants/{grant['id']}/transitions",
        json={"action": "submit"},
        headers=office.headers("pendamping"),
    )
    assert missing.status_code == 428


@pytest.mark.parametrize(
    ("action", "stage_actions", "data", "fields"),
    [
        ("verify", ["submit"], {}, ["data.checklist"]),
        ("approve", ["submit", "verify"], {}, ["data.decree_number"]),
        (
            "disburse",
            ["submit", "verify", "approve"],
            {},
            ["data.amount", "data.transfer_date", "data.transfer_reference"],
        ),
        ("return", ["submit"], {}, ["comment"]),
        ("verify", ["submit"], {"checklist": ALL_DOCUMENTS, "surprise": 1}, ["data.surprise"]),
    ],
)
def test_missing_action_data_is_422_naming_each_field(
    office, apps, action, stage_actions, data, fields
):
    grant = walk(office, office.apply(office.program()["id"], announce_group(apps)), stage_actions)
    role = {
        "verify": "verifikator",
        "approve": "kepala_dinas",
        "disburse": "bendahara",
        "return": "verifikator",
    }[action]
    response = office.act(grant, action, role, data=data)
    assert response.status_code == 422, response.json
    assert sorted(e["field"] for e in response.json["errors"]) == fields
    again = office.client.get(f"/api/v1/grants/{grant['id']}", headers=office.headers("auditor"))
    assert again.json["stage"] == grant["stage"]
    assert again.json["version"] == grant["version"]


def test_another_regions_grant_is_404(office, apps, auth):
    grant = office.apply(office.program()["id"], announce_group(apps))
    other = Office(office.client, auth, region="33")
    assert (
        other.client.get(
            f"/api/v1/grants/{grant['id']}", headers=other.headers("auditor")
        ).status_code
        == 404
    )
    assert other.act(grant, "submit", "pendamping").status_code == 404


def test_each_guard_fails_by_name(office, apps):
    program = office.program(max_members=10)
    group_id = announce_group(apps, members=10)
    grant = office.apply(program["id"], group_id)
    # The group changes in the registry after the application was made.
    announce_group(apps, group_id=group_id, members=12, status="suspended", officers=("ketua",))
    response = office.act(grant, "submit", "pendamping")
    assert response.status_code == 409
    guards = {e["guard"] for e in response.json["errors"]}
    assert guards == {"group_active", "member_count", "officers_complete"}
    assert all(e["message"] and e["message_id"] for e in response.json["errors"])


def test_amount_above_the_rule_and_a_second_open_application_are_refused(office, apps):
    program = office.program()
    group_id = announce_group(apps, members=5)
    too_much = office.client.post(
        "/api/v1/grants",
        json={
            "program_id": program["id"],
            "group_id": str(group_id),
            "amount": 10_000_001,
            "business_plan": "Warung",
        },
        headers=office.headers("pendamping"),
    )
    assert too_much.status_code == 409
    assert [e["guard"] for e in too_much.json["errors"]] == ["amount_within_rule"]
    office.apply(program["id"], group_id)
    second = office.client.post(
        "/api/v1/grants",
        json={"program_id": program["id"], "group_id": str(group_id), "business_plan": "Warung"},
        headers=office.headers("pendamping"),
    )
    assert second.status_code == 409
    assert [e["guard"] for e in second.json["errors"]] == ["one_open_application"]


def test_an_unknown_group_and_a_closed_programme_fail_together(office, apps):
    import uuid

    program = office.program(status="closed")
    response = office.client.post(
        "/api/v1/grants",
        json={"program_id": program["id"], "group_id": str(uuid.uuid4()), "business_plan": "x"},
        headers=office.headers("pendamping"),
    )
    assert response.status_code == 409
    assert {e["guard"] for e in response.json["errors"]} == {"group_known", "program_open"}


def test_whoever_submitted_or_verified_may_not_approve(office, apps):
    grant = office.apply(office.program()["id"], announce_group(apps))
    grant = office.move(grant, "submit", "pendamping", sub="ani")
    grant = office.move(
        grant, "verify", "verifikator", sub="budi", data={"checklist": ALL_DOCUMENTS}
    )
    for sub in ("ani", "budi"):
        headers = {
            **office.auth("kepala_dinas", "pendamping", "verifikator", region="64", sub=sub),
            "If-Match": f'"{grant["version"]}"',
        }
        response = office.client.post(
            f"/api/v1/grants/{grant['id']}/transitions",
            json={"action": "approve", "data": {"decree_number": "SK-9"}},
            headers=headers,
        )
        assert response.status_code == 409
        assert [e["guard"] for e in response.json["errors"]] == ["separation_of_duties"]
    assert (
        office.move(grant, "approve", "kepala_dinas", sub="citra", data={"decree_number": "SK-9"})[
            "stage"
        ]
        == "approved"
    )


def test_the_budget_guard_names_what_is_left(office, apps):
    program = office.program(total_budget=30_000_000)
    first = walk(
        office, office.apply(program["id"], announce_group(apps)), ["submit", "verify", "approve"]
    )
    assert first["stage"] == "approved"
    second = walk(office, office.apply(program["id"], announce_group(apps)), ["submit", "verify"])
    response = office.act(
        second, "approve", "kepala_dinas", sub="kepala", data={"decree_number": "SK-2"}
    )
    assert response.status_code == 409
    assert [e["guard"] for e in response.json["errors"]] == ["budget_available"]
    assert "Rp 10.000.000" in response.json["errors"][0]["message_id"]


def test_a_returned_draft_is_corrected_and_submitted_again(office, apps):
    grant = walk(office, office.apply(office.program()["id"], announce_group(apps)), ["submit"])
    grant = office.move(grant, "return", "verifikator", comment="Lengkapi surat desa.")
    assert grant["stage"] == "draft"
    assert grant["last_comment"] == "Lengkapi surat desa."
    patched = office.client.patch(
        f"/api/v1/grants/{grant['id']}",
        json={"business_plan": "Rencana baru"},
        headers=office.headers("pendamping", **{"If-Match": f'"{grant["version"]}"'}),
    )
    assert patched.status_code == 200, patched.json
    assert office.move(patched.json, "submit", "pendamping")["stage"] == "submitted"


def test_only_the_submitter_cancels(office, apps):
    grant = walk(office, office.apply(office.program()["id"], announce_group(apps)), ["submit"])
    other = office.act(grant, "cancel", "pendamping", sub="someone-else")
    assert [e["guard"] for e in other.json["errors"]] == ["submitter_only"]
    assert office.move(grant, "cancel", "pendamping")["stage"] == "cancelled"


def test_a_usage_report_can_be_returned_then_accepted(office, apps):
    grant = walk(
        office,
        office.apply(office.program()["id"], announce_group(apps)),
        ["submit", "verify", "approve", "disburse", "report"],
    )
    grant = office.move(grant, "return_report", "verifikator", comment="Kuitansi kurang.")
    assert grant["stage"] == "disbursed"
    grant = walk(office, grant, ["report", "accept_report"])
    assert grant["stage"] == "report_accepted"


def test_a_new_workflow_version_applies_to_new_applications_only(office, apps, clients, auth):
    program = office.program()
    before = office.apply(program["id"], announce_group(apps))
    listed = clients["grants"].get("/api/v1/workflows", headers=auth("auditor", region="64")).json
    regional = next(w for w in listed if w["key"] == "regional")
    definition = {k: v for k, v in regional["definition"].items() if k not in ("key", "version")}
    definition["title"] = "Regional budget, verification in 5 working days"
    definition["deadlines"]["submitted"]["working_days"] = 5
    added = clients["grants"].post(
        "/api/v1/workflows/regional", json=definition, headers=auth("admin")
    )
    assert added.status_code == 201, added.json
    assert added.json["version"] == 2

    after = office.apply(program["id"], announce_group(apps))
    assert before["workflow"] == {"key": "regional", "version": 1}
    assert after["workflow"] == {"key": "regional", "version": 2}
    old = office.move(before, "submit", "pendamping")
    assert old["workflow"]["version"] == 1


def test_a_definition_naming_an_unknown_guard_is_422(clients, auth):
    response = clients["grants"].post(
        "/api/v1/workflows/regional",
        json={
            "title": "Broken",
            "create": {"roles": ["pendamping"]},
            "documents": [],
            "transitions": [
                {
                    "from": "draft",
                    "action": "submit",
                    "to": "submitted",
                    "roles": ["pendamping"],
                    "guards": ["moon_phase"],
                }
            ],
        },
        headers=auth("admin"),
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["transitions.0.guards.0"]


def test_the_programme_counters_equal_the_ledger(office, apps):
    from services.grants.budget import ledger_totals

    program = office.program()
    for _ in range(3):
        walk(
            office,
            office.apply(program["id"], announce_group(apps)),
            ["submit", "verify", "approve"],
        )
    with apps["grants"].extensions["kube"].db.transaction() as session:
        stored = session.get(Program, program["id"])
        assert ledger_totals(session, stored.id) == {
            "reserved": stored.reserved,
            "disbursed": stored.disbursed,
        }
        assert stored.reserved == 60_000_000
        assert session.scalar(select(AuditRecord.id).limit(1)) is not None


def test_the_documented_routes_and_deadlines_are_the_ones_the_code_runs():
    from services.grants.definitions import route_of, shipped_definitions
    from services.grants.service import SERVICE

    from support import ROOT

    documented = (ROOT / "docs" / "grants.md").read_text()
    # The tables `kube workflows` prints, word for word.
    for workflow in SERVICE.workflows:
        assert workflow.table() in documented, workflow.name
    for definition in shipped_definitions():
        route = route_of(definition["key"], definition["version"], definition)
        for stage, due in route.deadlines.items():
            when = f"{due.working_days} working days" if due.working_days else "report period"
            assert f"| {stage} | {when} | {due.responsible_role} |" in documented, stage


def test_a_definition_with_a_stage_outside_the_contract_is_422(clients, auth):
    listed = clients["grants"].get("/api/v1/workflows", headers=auth()).json
    definition = next(w for w in listed if w["key"] == "regional")["definition"]
    definition = {k: v for k, v in definition.items() if k not in ("key", "version")}
    definition["transitions"] = [
        {**t, "to": "lpj_checked"} if t["action"] == "accept_report" else t
        for t in definition["transitions"]
    ]
    response = clients["grants"].post(
        "/api/v1/workflows/regional", json=definition, headers=auth("admin")
    )
    assert response.status_code == 422
    assert "lpj_checked is not a stage" in response.json["errors"][0]["message"]
