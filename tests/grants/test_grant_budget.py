"""The budget under concurrent approvals: real requests in parallel against PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from services.grants.budget import ledger_totals
from services.grants.models import Program

from grant_factories import Office, announce_group, walk

# Committed data stays for the rest of the run: kept in Balikpapan, out of other tests' way.
ELSEWHERE = "6471011001"


@pytest.mark.commits
def test_100_concurrent_approvals_on_a_budget_for_50_approve_exactly_50(clients, auth, apps):
    office = Office(clients["grants"], auth)
    program = office.program(
        name="UEP uji serentak",
        amount_rule="per_group",
        amount=2_000_000,
        total_budget=100_000_000,
    )
    grants = [
        walk(
            office,
            office.apply(program["id"], announce_group(apps, members=5, region_code=ELSEWHERE)),
            ["submit", "verify"],
        )
        for _ in range(100)
    ]
    start = threading.Barrier(len(grants))
    statuses: dict[str, tuple[int, dict]] = {}

    def approve(grant: dict) -> None:
        client = apps["grants"].test_client()
        headers = {**office.headers("kepala_dinas", "kepala"), "If-Match": f'"{grant["version"]}"'}
        start.wait(30)
        response = client.post(
            f"/api/v1/grants/{grant['id']}/transitions",
            json={"action": "approve", "data": {"decree_number": "SK-SERENTAK"}},
            headers=headers,
        )
        statuses[grant["id"]] = (response.status_code, response.json)

    threads = [threading.Thread(target=approve, args=(g,)) for g in grants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    codes = [code for code, _ in statuses.values()]
    assert codes.count(200) == 50, codes
    assert codes.count(409) == 50
    refused = [body for code, body in statuses.values() if code == 409]
    assert all([e["guard"] for e in body["errors"]] == ["budget_available"] for body in refused)
    with apps["grants"].extensions["kube"].db.transaction() as session:
        stored = session.scalar(select(Program).where(Program.id == program["id"]))
        assert (stored.reserved, stored.disbursed) == (100_000_000, 0)
        assert ledger_totals(session, stored.id) == {"reserved": 100_000_000, "disbursed": 0}


@pytest.mark.commits
def test_two_simultaneous_applications_of_one_group_make_one(clients, auth, apps):
    office = Office(clients["grants"], auth)
    program = office.program(name="UEP uji pengajuan ganda")
    group_id = announce_group(apps, region_code=ELSEWHERE)
    start = threading.Barrier(8)
    answers: list[tuple[int, dict]] = []

    def apply() -> None:
        client = apps["grants"].test_client()
        start.wait(30)
        response = client.post(
            "/api/v1/grants",
            json={
                "program_id": program["id"],
                "group_id": str(group_id),
                "business_plan": "Ternak ayam petelur",
            },
            headers=office.headers("pendamping"),
        )
        answers.append((response.status_code, response.json))

    threads = [threading.Thread(target=apply) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    codes = sorted(code for code, _ in answers)
    assert codes == [201] + [409] * 7, answers
    assert all(
        [e["guard"] for e in body["errors"]] == ["one_open_application"]
        for code, body in answers
        if code == 409
    )
