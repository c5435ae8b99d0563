"""Disbursement batches through the API: the transfer file out, the bank's result file back,
and a result applied twice changing nothing."""

from __future__ import annotations

import csv
import io

import pytest

from grant_factories import Office, announce_group, walk


@pytest.fixture
def office(clients, auth):
    return Office(clients["grants"], auth)


def _result(office: Office, batch_id: str, content: str):
    return office.client.post(
        f"/api/v1/disbursement-batches/{batch_id}/result",
        data={"file": (io.BytesIO(content.encode()), "hasil.csv")},
        content_type="multipart/form-data",
        headers=office.headers("bendahara"),
    )


def test_a_batch_pays_through_the_bank_file_and_a_replayed_result_changes_nothing(office, apps):
    program = office.program()
    paid, refused = (
        walk(
            office,
            office.apply(program["id"], announce_group(apps, name=name)),
            ["submit", "verify", "approve"],
        )
        for name in ("KUBE Tempe Makmur", "KUBE Warung Sejahtera")
    )

    made = office.client.post(
        "/api/v1/disbursement-batches",
        json={"program_id": program["id"], "grant_ids": [paid["id"], refused["id"]]},
        headers=office.headers("bendahara"),
    )
    assert made.status_code == 201, made.json
    batch_id = made.json["batch"]["id"]
    assert [i["ok"] for i in made.json["items"]] == [True, True]
    transfers = office.client.get(
        f"/api/v1/disbursement-batches/{batch_id}/transfer-file",
        headers=office.headers("bendahara"),
    )
    rows = list(csv.reader(io.StringIO(transfers.get_data(as_text=True))))
    assert rows[0] == ["reference", "bank_name", "account_number", "account_holder", "amount"]
    by_holder = {row[3]: row for row in rows[1:]}
    assert by_holder["KUBE Tempe Makmur"][1:] == [
        "BRI",
        "002101000123305",
        "KUBE Tempe Makmur",
        "20000000",
    ]

    result = (
        "reference,status,transfer_reference,transfer_date,reason\r\n"
        f"{by_holder['KUBE Tempe Makmur'][0]},success,TRF-0001,2026-11-25,\r\n"
        f"{by_holder['KUBE Warung Sejahtera'][0]},failed,,,Rekening tidak aktif\r\n"
    )
    first = _result(office, batch_id, result)
    assert first.status_code == 200, first.json
    assert [(r["status"], r["unchanged"]) for r in first.json["rows"]] == [
        ("disbursed", False),
        ("failed", False),
    ]
    assert first.json["batch"]["status"] == "settled"

    again = _result(office, batch_id, result)
    assert again.status_code == 200, again.json
    assert [(r["ok"], r["unchanged"]) for r in again.json["rows"]] == [(True, True), (True, True)]

    grants = {
        g["id"]: g
        for g in office.client.get(
            f"/api/v1/grants?program_id={program['id']}", headers=office.headers("auditor")
        ).json["items"]
    }
    assert grants[paid["id"]]["stage"] == "disbursed"
    assert grants[paid["id"]]["transfer_reference"] == "TRF-0001"
    assert grants[refused["id"]]["stage"] == "approved"
    budget = office.client.get(
        f"/api/v1/programs/{program['id']}/budget", headers=office.headers("auditor")
    ).json
    assert (budget["reserved"], budget["disbursed"]) == (20_000_000, 20_000_000)
