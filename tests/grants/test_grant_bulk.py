"""Decrees approving many applications, and disbursement batches with the bank's result."""

from __future__ import annotations

import io
import uuid

import pytest

from grant_factories import Office, announce_group, walk


@pytest.fixture
def office(clients, auth):
    return Office(clients["grants"], auth)


def verified(office, apps, program, n: int, **group) -> list[dict]:
    return [
        walk(
            office, office.apply(program["id"], announce_group(apps, **group)), ["submit", "verify"]
        )
        for _ in range(n)
    ]


def decree(office, grant_ids, *, number="SK-460/12/2026", atomic=False, sub="kepala"):
    return office.client.post(
        "/api/v1/decrees",
        json={
            "number": number,
            "decree_date": "2026-11-27",
            "signer": "Kepala Dinas Sosial Provinsi Kalimantan Timur",
            "grant_ids": [str(g) for g in grant_ids],
            "atomic": atomic,
        },
        headers=office.headers("kepala_dinas", sub),
    )


def budget(office, program) -> dict:
    return office.client.get(
        f"/api/v1/programs/{program['id']}/budget", headers=office.headers("auditor")
    ).json


def test_a_decree_approves_what_passes_and_reports_each_failure(office, apps):
    program = office.program(total_budget=100_000_000)
    good = verified(office, apps, program, 3)
    draft = office.apply(program["id"], announce_group(apps))
    unknown = uuid.uuid4()
    # Self-approval: the decree's signer verified this one.
    own = walk(office, office.apply(program["id"], announce_group(apps)), ["submit"])
    own = office.move(
        own,
        "verify",
        "verifikator",
        sub="kepala",
        data={
            "checklist": dict.fromkeys(
                (
                    "ktp",
                    "kk",
                    "register_proof",
                    "founding_minutes",
                    "business_plan",
                    "bank_account",
                    "village_letter",
                    "regency_recommendation",
                ),
                True,
            )
        },
    )

    response = decree(office, [g["id"] for g in good] + [draft["id"], unknown, own["id"]])

    assert response.status_code == 200, response.json
    items = {i["grant_id"]: i for i in response.json["items"]}
    assert [items[g["id"]]["ok"] for g in good] == [True, True, True]
    assert items[draft["id"]]["problem"]["status"] == 409
    assert items[draft["id"]]["problem"]["status_now"] == "draft"
    assert items[str(unknown)]["problem"]["status"] == 404
    assert [e["guard"] for e in items[own["id"]]["problem"]["errors"]] == ["separation_of_duties"]
    assert response.json["decree"]["approved_count"] == 3
    assert response.json["decree"]["failed_count"] == 3
    assert budget(office, program)["reserved"] == 60_000_000
    read = office.client.get(
        f"/api/v1/grants/{good[0]['id']}", headers=office.headers("auditor")
    ).json
    assert read["decree_id"] == response.json["decree"]["id"]
    assert read["decree_number"] == "SK-460/12/2026"


def test_a_decree_beyond_the_budget_approves_in_order_until_it_runs_out(office, apps):
    program = office.program(total_budget=40_000_000)
    grants = verified(office, apps, program, 3)
    response = decree(office, [g["id"] for g in grants])
    oks = [i["ok"] for i in response.json["items"]]
    assert oks == [True, True, False]
    assert [e["guard"] for e in response.json["items"][2]["problem"]["errors"]] == [
        "budget_available"
    ]
    assert budget(office, program)["available"] == 0


def test_an_atomic_decree_with_a_failure_changes_nothing(office, apps):
    program = office.program()
    grants = verified(office, apps, program, 2)
    draft = office.apply(program["id"], announce_group(apps))
    response = decree(office, [grants[0]["id"], draft["id"], grants[1]["id"]], atomic=True)
    assert response.status_code == 409
    assert [i["grant_id"] for i in response.json["items"]] == [draft["id"]]
    for grant in grants:
        read = office.client.get(f"/api/v1/grants/{grant['id']}", headers=office.headers("auditor"))
        assert read.json["stage"] == "verified"
    assert budget(office, program)["reserved"] == 0
    listed = office.client.get("/api/v1/decrees", headers=office.headers("auditor")).json
    assert listed["total"] == 0


def test_a_decree_number_is_used_once_per_office(office, apps):
    program = office.program()
    first, second = verified(office, apps, program, 2)
    assert decree(office, [first["id"]]).status_code == 200
    again = decree(office, [second["id"]])
    assert again.status_code == 409
    assert again.json["errors"][0]["field"] == "number"


def approved(office, apps, program, n, **group) -> list[dict]:
    grants = verified(office, apps, program, n, **group)
    response = decree(office, [g["id"] for g in grants], number=f"SK-{uuid.uuid4().hex[:6]}")
    assert all(i["ok"] for i in response.json["items"]), response.json
    return grants


def upload_result(office, batch_id, csv_text: str):
    return office.client.post(
        f"/api/v1/disbursement-batches/{batch_id}/result",
        data={"file": (io.BytesIO(csv_text.encode()), "hasil-bank.csv")},
        headers=office.headers("bendahara"),
        content_type="multipart/form-data",
    )


def test_a_batch_pays_through_the_banks_result_and_a_replay_changes_nothing(office, apps):
    program = office.program()
    grants = approved(office, apps, program, 3)
    no_account = approved(office, apps, program, 1, bank=False)[0]

    made = office.client.post(
        "/api/v1/disbursement-batches",
        json={"program_id": program["id"]},
        headers=office.headers("bendahara"),
    )
    assert made.status_code == 201, made.json
    batch = made.json["batch"]
    assert batch["items"] == 3
    refused = [i for i in made.json["items"] if not i["ok"]]
    assert [i["grant_id"] for i in refused] == [no_account["id"]]
    assert refused[0]["problem"]["errors"][0]["guard"] == "bank_account_known"

    transfer = office.client.get(
        f"/api/v1/disbursement-batches/{batch['id']}/transfer-file",
        headers=office.headers("bendahara"),
    )
    assert transfer.status_code == 200
    assert transfer.mimetype == "text/csv"
    lines = transfer.get_data(as_text=True).splitlines()
    assert lines[0] == "reference,bank_name,account_number,account_holder,amount"
    references = [line.split(",")[0] for line in lines[1:]]
    assert len(references) == 3
    assert all(line.endswith(",20000000") for line in lines[1:])

    result = "reference,status,transfer_reference,transfer_date,reason\r\n" + "".join(
        [
            f"{references[0]},success,BRI-TRX-1,2026-11-28,\r\n",
            f"{references[1]},success,BRI-TRX-2,2026-11-28,\r\n",
            f"{references[2]},failed,,,Rekening tidak aktif\r\n",
        ]
    )
    applied = upload_result(office, batch["id"], result)
    assert applied.status_code == 200, applied.json
    assert [r["status"] for r in applied.json["rows"]] == ["disbursed", "disbursed", "failed"]
    assert applied.json["batch"]["status"] == "settled"
    after = budget(office, program)
    assert (after["disbursed"], after["reserved"]) == (40_000_000, 40_000_000)

    replay = upload_result(office, batch["id"], result)
    assert replay.status_code == 200
    assert all(r["unchanged"] for r in replay.json["rows"])
    assert budget(office, program) == after
    stages = sorted(
        office.client.get(f"/api/v1/grants/{g['id']}", headers=office.headers("auditor")).json[
            "stage"
        ]
        for g in grants
    )
    assert stages == ["approved", "disbursed", "disbursed"]
    # The failed transfer can go in a new batch.
    again = office.client.post(
        "/api/v1/disbursement-batches",
        json={"program_id": program["id"]},
        headers=office.headers("bendahara"),
    )
    assert again.json["batch"]["items"] == 1


def test_a_result_file_with_bad_rows_applies_nothing_and_names_them(office, apps):
    program = office.program()
    approved(office, apps, program, 1)
    batch = office.client.post(
        "/api/v1/disbursement-batches",
        json={"program_id": program["id"]},
        headers=office.headers("bendahara"),
    ).json["batch"]
    response = upload_result(
        office,
        batch["id"],
        "reference,status,transfer_reference,transfer_date\nX,maybe,,\nY,success,,28-11-2026\n",
    )
    assert response.status_code == 422
    assert sorted(e["field"] for e in response.json["errors"]) == [
        "file.2.status",
        "file.3.transfer_date",
        "file.3.transfer_reference",
    ]
    assert budget(office, program)["disbursed"] == 0


def test_another_regions_batch_and_decree_are_404(office, apps, auth):
    program = office.program()
    grants = approved(office, apps, program, 1)
    batch = office.client.post(
        "/api/v1/disbursement-batches",
        json={"program_id": program["id"]},
        headers=office.headers("bendahara"),
    ).json["batch"]
    other = Office(office.client, auth, region="33")
    assert (
        other.client.get(
            f"/api/v1/disbursement-batches/{batch['id']}", headers=other.headers("bendahara")
        ).status_code
        == 404
    )
    assert upload_result(other, batch["id"], "reference,status\n").status_code == 404
    read = office.client.get(
        f"/api/v1/grants/{grants[0]['id']}", headers=office.headers("auditor")
    ).json
    assert (
        other.client.get(
            f"/api/v1/decrees/{read['decree_id']}", headers=other.headers("auditor")
        ).status_code
        == 404
    )


def test_a_decree_approving_nothing_is_not_issued_and_its_number_stays_free(office, apps):
    program = office.program()
    draft = office.apply(program["id"], announce_group(apps))
    refused = decree(office, [draft["id"]], number="SK-KOSONG")
    assert refused.status_code == 409
    assert refused.json["items"][0]["problem"]["status_now"] == "draft"
    (ready,) = verified(office, apps, program, 1)
    assert decree(office, [ready["id"]], number="SK-KOSONG").status_code == 200
