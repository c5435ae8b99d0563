"""Demo data for the local run, created through the grant service's own API: a province (APBD)
and a national (APBN) programme, and applications at several stages of their routes, each
step taken by its own person and role as an office would."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Mapping
from datetime import date, datetime

import requests

from shared.timezones import zone_of
from shared.tokens import issue_token

PROVINCE = "64"  # Kalimantan Timur
# How long the registry's demo groups may take to reach grants (relay and worker).
GROUPS_WAIT_SECONDS = 60

# The stage each application is taken to, in order; the groups founded first go furthest.
PLAN = (
    ("regional", "disbursed"),
    ("regional", "approved"),
    ("regional", "verified"),
    ("regional", "submitted"),
    ("national", "recommended"),
)
# Steps taken one by one; approval comes by decree, disbursement by a bank transfer batch.
STEPS = {
    "submitted": ("submit",),
    "verified": ("submit", "verify"),
    "recommended": ("submit", "verify", "recommend"),
    "approved": ("submit", "verify"),
    "disbursed": ("submit", "verify"),
}
# One person per role, so separation of duties holds (no one approves what they submitted).
PEOPLE = {
    "pendamping": "demo-pendamping",
    "verifikator": "demo-verifikator",
    "kepala_dinas": "demo-kepala-dinas",
    "bendahara": "demo-bendahara",
}
TAKERS = {"submit": "pendamping", "verify": "verifikator", "recommend": "kepala_dinas"}
SIGNER = "Kepala Dinas Sosial Provinsi Kalimantan Timur"

PLANS = {
    "tempe": (
        "Menambah produksi tempe dari 20 kg menjadi 50 kg kedelai per hari untuk pasar Segiri.",
        [("Mesin pemecah kedelai", 1, 4_500_000), ("Dandang perebus 100 liter", 2, 1_250_000)],
    ),
    "e-warong": (
        "Menambah stok sembako e-Warong agar melayani penerima bantuan pangan satu kelurahan.",
        [("Rak dan etalase", 2, 1_500_000), ("Stok awal sembako", 1, 5_000_000)],
    ),
    "tailoring": (
        "Menerima pesanan seragam sekolah dan batik dari tiga sekolah di kecamatan.",
        [("Mesin jahit high speed", 2, 3_000_000), ("Kain dan benang", 1, 2_500_000)],
    ),
    "goats": (
        "Penggemukan kambing untuk pasar Iduladha, dengan kandang panggung bersama.",
        [("Kambing bakalan", 6, 1_200_000), ("Bahan kandang panggung", 1, 2_300_000)],
    ),
    "crafts": (
        "Produksi kerajinan manik-manik khas Dayak untuk toko oleh-oleh dan penjualan daring.",
        [("Manik-manik dan benang", 1, 4_000_000), ("Alat ukir dan pewarna", 1, 1_500_000)],
    ),
    "poultry": (
        "Ternak ayam kampung petelur 300 ekor, telur dijual ke warung sekitar.",
        [("Ayam kampung siap bertelur", 150, 45_000), ("Kandang dan tempat pakan", 1, 2_800_000)],
    ),
}
GENERAL_PLAN = ("Usaha bersama kelompok sesuai rencana usaha yang disusun pendamping.", [])


class DemoError(RuntimeError):
    """The grant service refused a demo step it should have taken."""


def _ok(response: requests.Response, what: str) -> requests.Response:
    if not response.ok:
        raise DemoError(f"{what}: {response.status_code} {response.text[:800]}")
    return response


def _all_ok(items: list[dict], what: str) -> None:
    """A bulk answer's items: every one must have succeeded."""
    failed = [item for item in items if not item["ok"]]
    if failed:
        raise DemoError(f"{what}: {failed}")


class _Api:
    """The grant API as one person (a token for one role in the province) calls it."""

    def __init__(self, base: str, token: str):
        self.base = f"{base}/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, what: str, **params) -> requests.Response:
        return _ok(self.http.get(f"{self.base}{path}", params=params, timeout=10), what)

    def post(self, path: str, what: str, **kwargs) -> requests.Response:
        return _ok(self.http.post(f"{self.base}{path}", timeout=30, **kwargs), what)


def _staff(base: str) -> dict[str, _Api]:
    """A caller per role, each signed with the platform's secret as `kube token` signs."""
    secret = os.environ.get("KUBE_JWT_SECRET")
    if not secret:
        raise DemoError("KUBE_JWT_SECRET is not set; the demo cannot sign its staff's tokens.")
    return {
        role: _Api(
            base, issue_token(secret, sub=sub, roles=[role], region=PROVINCE, ttl_seconds=900)
        )
        for role, sub in PEOPLE.items()
    }


def _registry_groups(urls: Mapping[str, str], token: str) -> list[dict]:
    """The registry's groups in the province, as its API lists them."""
    response = requests.get(
        f"{urls['registry']}/api/v1/groups",
        params={"region": PROVINCE, "page_size": 100},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return _ok(response, "listing the registry's groups").json()["items"]


def _wait_for_groups(admin: _Api, wanted: list[dict]) -> bool:
    """Wait until grants knows each wanted group in its current status (the registry's events
    travel through the relay and grants' worker); False if they do not arrive in time."""
    deadline = time.monotonic() + GROUPS_WAIT_SECONDS
    while True:
        known = {
            g["id"]: g["status"]
            for g in admin.get("/groups", "listing grants' groups", page_size=100).json()["items"]
        }
        if all(known.get(g["id"]) == g["status"] for g in wanted):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def _create_programs(admin: _Api, office: _Api, year: int) -> dict[str, dict]:
    """The province's own programme (its office creates it) and the ministry's national one."""
    regional = office.post(
        "/programs",
        "creating the APBD programme",
        json={
            "name": f"UEP KUBE APBD Provinsi Kalimantan Timur {year}",
            "fiscal_year": year,
            "funding_source": "apbd_province",
            "region_code": PROVINCE,
            "total_budget": 500_000_000,
            "amount_rule": "per_member",
            "amount": 2_000_000,
            "min_members": 5,
            "max_members": 10,
        },
    ).json()
    national = admin.post(
        "/programs",
        "creating the APBN programme",
        json={
            "name": f"UEP KUBE APBN Kementerian Sosial {year}",
            "fiscal_year": year,
            "funding_source": "apbn",
            "region_code": None,
            "total_budget": 2_000_000_000,
            "amount_rule": "per_member",
            "amount": 2_000_000,
            "min_members": 5,
            "max_members": 20,
        },
    ).json()
    return {regional["workflow"]: regional, national["workflow"]: national}


def _apply(staff: dict[str, _Api], program: dict, group: dict, documents: list[str]) -> dict:
    """The group's application, made by its facilitator with every document handed in."""
    plan, items = PLANS.get(group.get("business_type") or "", GENERAL_PLAN)
    response = staff["pendamping"].post(
        "/grants",
        f"applying for {group['name']}",
        json={
            "program_id": program["id"],
            "group_id": group["id"],
            "business_plan": plan,
            "requested_items": [
                {"name": name, "quantity": quantity, "unit_price": price}
                for name, quantity, price in items
            ],
            "documents": dict.fromkeys(documents, True),
        },
    )
    return {**response.json(), "etag": response.headers["ETag"]}


def _step(staff: dict[str, _Api], grant: dict, action: str, data: dict) -> dict:
    """Take one action as the person whose role takes it, If-Match with the last ETag."""
    response = staff[TAKERS[action]].post(
        f"/grants/{grant['id']}/transitions",
        f"{action} for {grant['group_name']}",
        json={"action": action, "comment": None, "data": data},
        headers={"If-Match": grant["etag"]},
    )
    return {**response.json(), "etag": response.headers["ETag"]}


def _action_data(action: str, documents: list[str], number: int, year: int) -> dict:
    if action == "verify":
        return {
            "checklist": dict.fromkeys(documents, True),
            "minutes_number": f"BA-{number:03d}/VERVAL/DINSOS/{year}",
        }
    if action == "recommend":
        return {"letter_number": f"400.9/{number:03d}/REK-DINSOS/{year}"}
    return {}


def _approve_by_decree(staff: dict[str, _Api], grant_ids: list[str], today: date) -> None:
    """Approve the applications under one decree of the head of office, all or none."""
    outcome = (
        staff["kepala_dinas"]
        .post(
            "/decrees",
            "issuing the decree",
            json={
                "number": f"400.9/0123/DINSOS/{today.year}",
                "decree_date": today.isoformat(),
                "signer": SIGNER,
                "grant_ids": grant_ids,
                "atomic": True,
            },
        )
        .json()
    )
    _all_ok(outcome["items"], "the decree")


def _disburse_by_batch(
    staff: dict[str, _Api], program_id: str, grant_ids: list[str], today: date
) -> None:
    """Send the approved applications to the bank in one batch and apply its result file."""
    treasurer = staff["bendahara"]
    batch = treasurer.post(
        "/disbursement-batches",
        "making the disbursement batch",
        json={"program_id": program_id, "grant_ids": grant_ids},
    ).json()["batch"]
    transfers = treasurer.get(
        f"/disbursement-batches/{batch['id']}/transfer-file", "reading the transfer file"
    ).text
    result = io.StringIO()
    writer = csv.writer(result, lineterminator="\r\n")
    writer.writerow(("reference", "status", "transfer_reference", "transfer_date", "reason"))
    for n, row in enumerate(csv.DictReader(io.StringIO(transfers)), start=1):
        transfer = f"TRF{today:%Y%m%d}{n:05d}"
        writer.writerow((row["reference"], "success", transfer, today.isoformat(), ""))
    outcome = treasurer.post(
        f"/disbursement-batches/{batch['id']}/result",
        "applying the bank's result",
        files={"file": ("hasil-transfer.csv", result.getvalue().encode(), "text/csv")},
    ).json()
    _all_ok(outcome["rows"], "the bank's result")


def seed(urls: Mapping[str, str], token: str) -> None:
    """Create the demo programmes and applications through the grant API, unless programmes
    exist already (`urls` maps each service to its base URL; `token` is a nationwide admin's)."""
    admin = _Api(urls["grants"], token)
    if admin.get("/programs", "listing programmes").json()["total"]:
        print("Grant programmes are there already; no grant demo data added.", flush=True)
        return
    groups = sorted(
        (g for g in _registry_groups(urls, token) if g["status"] in ("active", "draft")),
        key=lambda g: (g.get("founded_on") or "9999", g["name"]),
    )
    active = [g for g in groups if g["status"] == "active"]
    waiting = [g for g in groups if g["status"] == "draft"]
    if not active:
        print(
            f"The registry has no active group in region {PROVINCE}; no grant demo data added.",
            flush=True,
        )
        return
    if not _wait_for_groups(admin, groups):
        print(
            f"The registry's groups did not reach the grant service within "
            f"{GROUPS_WAIT_SECONDS} s (see .local/logs/relay.log and grants-worker.log); "
            "no grant demo data added.",
            flush=True,
        )
        return
    staff = _staff(urls["grants"])
    today = datetime.now(zone_of(PROVINCE)).date()
    programs = _create_programs(admin, staff["kepala_dinas"], today.year)
    documents = {
        w["key"]: w["definition"]["documents"]
        for w in admin.get("/workflows", "reading the routes").json()
        if w["latest"]
    }
    made: list[tuple[dict, str]] = []
    for number, ((route, stage), group) in enumerate(zip(PLAN, active, strict=False), start=1):
        grant = _apply(staff, programs[route], group, documents[route])
        for action in STEPS[stage]:
            data = _action_data(action, documents[route], number, today.year)
            grant = _step(staff, grant, action, data)
        made.append((grant, stage))
    # A draft for a group the registry has not activated yet: it can be submitted once it is.
    draft_group = (waiting or active[len(PLAN) :] or [None])[0]
    if draft_group is not None:
        grant = _apply(staff, programs["regional"], draft_group, documents["regional"])
        made.append((grant, "draft"))
    to_approve = [g["id"] for g, stage in made if stage in ("approved", "disbursed")]
    if to_approve:
        _approve_by_decree(staff, to_approve, today)
    to_pay = [g["id"] for g, stage in made if stage == "disbursed"]
    if to_pay:
        _disburse_by_batch(staff, programs["regional"]["id"], to_pay, today)
    print(f"Seeded 2 grant programmes and {len(made)} applications:", flush=True)
    for grant in admin.get("/grants", "listing applications", page_size=100).json()["items"]:
        route = grant["workflow"]["key"]
        print(f"  {grant['group_name']:<24} {route:<9} {grant['stage']}", flush=True)
