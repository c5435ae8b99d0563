"""End to end through the Python client: grants on both funding routes from proposal to
closing, a group usable for a grant moments after the registry activates it, a decree of 200
applications paid through a bank batch, and a broadcast to a region; the SMS and emails
counted where they arrive (the suite's HTTP gateway and SMTP server)."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest

from kube_client import Conflict, NotFound

from harness import (
    SETTLE_SECONDS,
    Staff,
    apply,
    documents,
    event_tally,
    import_groups,
    make_program,
    member_set,
    national,
    register_group,
    report,
    running_platform,
    sms_tally,
    wait_known_to_grants,
)
from support import RUN_ID, wait_until

pytestmark = pytest.mark.e2e

VILLAGE = "6472011001"  # Kota Samarinda
BROADCAST_VILLAGE = "6471011001"  # Kota Balikpapan: only the broadcast test's groups live there
MAILBOX = f"pendamping-{RUN_ID}@dinsos.example.id"
TODAY = date.today()


@pytest.fixture(scope="module")
def platform(postgres_server, sms_gateway, mail_server, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("journeys")
    with running_platform(
        postgres_server, log_dir, f"{RUN_ID}j", sms=sms_gateway, mail=mail_server
    ) as running:
        # Where missed deadlines of the province's facilitators are told.
        running.client("admin").request(
            "notifications",
            "PUT",
            "/api/v1/mailboxes",
            json={"mailboxes": [{"email": MAILBOX, "region_code": "64", "role": "pendamping"}]},
        )
        yield running


@pytest.fixture(scope="module")
def staff(platform):
    return Staff(platform)


@pytest.fixture(scope="module")
def docs(staff):
    return documents(staff)


def wait_for_sms(platform, expected: Counter, timeout: float = SETTLE_SECONDS) -> dict:
    """Until every expected SMS reached the gateway (then a moment more, for any second
    copy); the tally of receipts against expectations."""
    wait_until(
        lambda: sms_tally(platform.sms.received, expected)["lost"] == 0,
        timeout=timeout,
        interval=0.5,
    )
    time.sleep(2)
    return sms_tally(platform.sms.received, expected)


def expect(phones: list[str], group: str, *kinds: str) -> Counter:
    return Counter(
        {(phone, group, kind): n for kind, n in Counter(kinds).items() for phone in phones}
    )


JOURNEYS = {
    # A return for correction on the way; the usage report's deadline already passed when
    # the money arrived (transfer 100 days ago, 90 days to report): the office is emailed.
    "regional": {
        "actions": [
            "submit",
            "return",
            "submit",
            "verify",
            "approve",
            "disburse",
            "report",
            "accept_report",
            "monitor",
            "close",
        ],
        "transfer_days_ago": 100,
        "sms": [
            "grant.submitted",
            "grant.returned",
            "grant.submitted",
            "grant.approved",
            "grant.disbursed",
            "grant.report_accepted",
        ],
        "emails": 1,
    },
    # The province recommends, the ministry approves; the report falls due within a week
    # (transfer 85 days ago): the group is reminded by SMS.
    "national": {
        "actions": [
            "submit",
            "verify",
            "recommend",
            "approve",
            "disburse",
            "report",
            "accept_report",
            "monitor",
            "close",
        ],
        "transfer_days_ago": 85,
        "sms": [
            "grant.submitted",
            "grant.approved",
            "grant.disbursed",
            "grant.report_due",
            "grant.report_accepted",
        ],
        "emails": 0,
    },
}


def action_data(action: str, grant: dict, docs: list[str], transfer_date: date) -> dict | None:
    return {
        "verify": {"checklist": dict.fromkeys(docs, True), "minutes_number": "BA-001/VERVAL"},
        "recommend": {"letter_number": "400.9/001/REK-DINSOS"},
        "approve": {"decree_number": "400.9/0123/DINSOS", "decree_date": TODAY.isoformat()},
        "disburse": {
            "transfer_reference": f"TRF{uuid.uuid4().hex[:10].upper()}",
            "transfer_date": transfer_date.isoformat(),
            "amount": grant["amount"],
        },
        "report": {
            "spent_amount": grant["amount"],
            "report_date": TODAY.isoformat(),
            "receipts": 9,
        },
        "monitor": {
            "business_status": "running",
            "visit_date": TODAY.isoformat(),
            "findings": "Produksi berjalan, 40 kg kedelai per hari.",
        },
    }.get(action)


@pytest.mark.parametrize("route", ["regional", "national"])
def test_a_grant_goes_its_whole_route_and_each_message_arrives_once(platform, staff, docs, route):
    journey = JOURNEYS[route]
    name = f"KUBE Jalan {route} {uuid.uuid4().hex[:6]}"
    group, members = register_group(staff, name, VILLAGE)
    wait_known_to_grants(staff, [group["id"]])
    program = make_program(staff, route, f"UEP {route} {name}")
    grant = apply(staff, program, group["id"], docs[route])
    transfer_date = TODAY - timedelta(days=journey["transfer_days_ago"])
    for action in journey["actions"]:
        comment = "Foto KTP ketua tidak terbaca." if action == "return" else None
        grant = staff.take(
            grant, action, action_data(action, grant, docs[route], transfer_date), comment
        )
        if action == "disburse":
            # The scheduler's deadline run (every five minutes), sent now instead of waited for.
            platform.send_task("grants", "grants.announce_deadlines")
            kind = "grant.report_due" if journey["emails"] == 0 else None
            if kind:
                wait_for_sms(platform, expect([national(m["phone"]) for m in members], name, kind))
            else:
                wait_until(lambda: platform.mail.to(MAILBOX) and _emails(platform, name), 60)
    assert grant["stage"] == "closed"
    history = staff["auditor"].grants.history(grant["id"])
    assert [h["action"] for h in history][1:] == journey["actions"]

    phones = [national(m["phone"]) for m in members]
    sms = wait_for_sms(platform, expect(phones, name, *journey["sms"]))
    emails = _emails(platform, name)
    delivered = event_tally(platform, [grant["id"]])
    report(
        f"{route} journey",
        sent=sms["sent"] + journey["emails"],
        delivered=sms["delivered"] + len(emails),
        duplicates=sms["duplicates"] + max(0, len(emails) - journey["emails"]),
        lost=sms["lost"] + max(0, journey["emails"] - len(emails)),
        unexpected_sms=sms["unexpected"],
        events=delivered,
    )
    assert sms["delivered"] == sms["sent"] == len(phones) * len(journey["sms"])
    assert sms["duplicates"] == sms["lost"] == sms["unexpected"] == 0
    assert len(emails) == journey["emails"]
    if emails:
        assert "tahap disbursed" in emails[0]["Subject"]
    assert delivered["applied"] == delivered["sent"] and delivered["lost"] == 0


def _emails(platform, group_name: str) -> list:
    return [m for m in platform.mail.to(MAILBOX) if group_name in m["Subject"]]


def test_a_group_the_registry_activates_is_usable_for_a_grant_within_a_second(
    platform, staff, docs
):
    program = make_program(staff, "regional", f"UEP cepat {uuid.uuid4().hex[:6]}")
    name = f"KUBE Cepat {uuid.uuid4().hex[:6]}"
    group, _ = register_group(staff, name, VILLAGE)
    activated = time.monotonic()
    attempts = 0

    def submitted():
        nonlocal attempts
        attempts += 1
        try:
            grant = apply(staff, program, group["id"], docs["regional"])
            return staff.take(grant, "submit")
        except Conflict:  # the group is not known (or not active) to grants yet
            # A draft made before the activation arrived is cancelled, to apply again.
            for draft in staff["pendamping"].grants.iter_grants(group_id=group["id"]):
                if draft["stage"] == "draft":
                    staff.take(draft, "cancel")
            return None

    grant = wait_until(submitted, timeout=10, interval=0.05)
    took = time.monotonic() - activated
    report(
        "group usable for a grant",
        seconds_after_activation=f"{took:.3f}",
        attempts=attempts,
        applications=1,
    )
    assert grant["stage"] == "submitted"


def test_a_decree_of_200_applications_and_their_bank_batch(platform, staff, docs):
    prefix = f"KUBE Dekrit {uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    groups = import_groups(staff, prefix, 200, VILLAGE)
    wait_known_to_grants(staff, [g["id"] for g in groups.values()])
    program = make_program(staff, "regional", f"UEP {prefix}")
    prepared = time.monotonic()

    def submitted_and_verified(group):
        grant = apply(staff, program, group["id"], docs["regional"])
        grant = staff.take(grant, "submit")
        data = {"checklist": dict.fromkeys(docs["regional"], True), "minutes_number": "BA-7"}
        return staff.take(grant, "verify", data)

    with ThreadPoolExecutor(4) as pool:
        grants = list(pool.map(submitted_and_verified, groups.values()))
    ids = [g["id"] for g in grants]
    walked = time.monotonic()

    decree = staff["kepala_dinas"].grants.issue_decree(
        number=f"400.9/{uuid.uuid4().hex[:6]}/DINSOS",
        decree_date=TODAY.isoformat(),
        signer="Kepala Dinas Sosial Provinsi Kalimantan Timur",
        grant_ids=ids,
        atomic=False,
    )
    assert [i["grant_id"] for i in decree["items"]] == ids
    assert all(i["ok"] and i["stage"] == "approved" for i in decree["items"]), decree["items"]
    assert decree["decree"]["approved_count"] == 200 and decree["decree"]["failed_count"] == 0

    treasurer = staff["bendahara"]
    made = treasurer.grants.create_disbursement_batch(program_id=program["id"], grant_ids=ids)
    batch = made["batch"]
    assert all(item["ok"] for item in made["items"]), made["items"]
    transfers = list(
        csv.DictReader(io.StringIO(treasurer.grants.get_transfer_file(batch["id"]).decode()))
    )
    assert len(transfers) == 200
    assert {int(t["amount"]) for t in transfers} == {10_000_000}
    result = io.StringIO()
    writer = csv.writer(result, lineterminator="\r\n")
    writer.writerow(("reference", "status", "transfer_reference", "transfer_date", "reason"))
    failed = {t["reference"] for t in transfers[-5:]}  # the bank refuses five accounts
    for n, transfer in enumerate(transfers):
        if transfer["reference"] in failed:
            writer.writerow((transfer["reference"], "failed", "", "", "Rekening tidak aktif"))
        else:
            writer.writerow(
                (transfer["reference"], "success", f"TRF{n:08d}", TODAY.isoformat(), "")
            )
    content = result.getvalue().encode()
    applied = treasurer.grants.apply_bank_result(batch["id"], content)
    outcomes = Counter(row.get("status") for row in applied["rows"])
    assert outcomes == {"disbursed": 195, "failed": 5}, applied["rows"][:3]
    again = treasurer.grants.apply_bank_result(batch["id"], content)
    assert all(row.get("unchanged") for row in again["rows"]), again["rows"][:3]
    budget = staff["auditor"].grants.get_program_budget(program["id"])
    assert budget["disbursed"] == 195 * 10_000_000
    assert budget["reserved"] == 5 * 10_000_000
    stages = Counter(
        g["stage"] for g in staff["auditor"].grants.iter_grants(program_id=program["id"])
    )
    assert stages == {"disbursed": 195, "approved": 5}
    settled = time.monotonic()

    refused = {row["grant_id"] for row in applied["rows"] if row.get("status") == "failed"}
    expected = Counter()
    grant_of_group = {g["group_id"]: g["id"] for g in grants}
    for name, group in groups.items():
        kinds = ["grant.submitted", "grant.approved"]
        if grant_of_group[group["id"]] not in refused:
            kinds.append("grant.disbursed")
        expected += expect(group["phones"], name, *kinds)
    sms = wait_for_sms(platform, expected)
    events = event_tally(platform, ids)
    report(
        "decree of 200 and its bank batch",
        sent=sms["sent"],
        delivered=sms["delivered"],
        duplicates=sms["duplicates"],
        lost=sms["lost"],
        unexpected=sms["unexpected"],
        events=events,
        seconds=(
            f"groups {prepared - started:.0f}, submit+verify {walked - prepared:.0f}, "
            f"decree+batch {settled - walked:.0f}, SMS {time.monotonic() - settled:.0f}"
        ),
    )
    assert sms["duplicates"] == sms["lost"] == sms["unexpected"] == 0
    assert events["applied"] == events["sent"] and events["dead_lettered"] == 0


def test_a_broadcast_to_a_region_reaches_every_member_once(platform, staff):
    groups = {}
    for n in range(6):
        name = f"KUBE Siar {uuid.uuid4().hex[:6]} {n}"
        group, members = register_group(staff, name, BROADCAST_VILLAGE)
        groups[group["id"]] = [national(m["phone"]) for m in members]
    # A group still in draft hears nothing.
    draft = staff["pendamping"].registry.create_group(
        name="KUBE Siar Draf", region_code=BROADCAST_VILLAGE
    )
    draft_members = member_set(5)
    for person in draft_members:
        staff["pendamping"].registry.add_member(draft["id"], **person)

    def contacts(group_id: str) -> int:
        try:
            path = f"/api/v1/recipient-groups/{group_id}"
            answer = platform.client("admin").request("notifications", "GET", path)
        except NotFound:  # the registry's events have not arrived yet
            return 0
        return len(answer.json()["contacts"])

    wait_until(lambda: all(contacts(g) == 5 for g in groups), timeout=60, interval=0.5)
    text = f"Pelatihan pemasaran daring di kantor Dinas Sosial, kode {uuid.uuid4().hex[:6]}."
    broadcast = staff["verifikator"].notifications.create_broadcast(
        region_code="6471", text=text, audience="all_members"
    )
    phones = Counter(p for members in groups.values() for p in members)

    def arrived():
        return Counter(r["to"] for r in platform.sms.received if r["message"] == text)

    wait_until(lambda: sum(arrived().values()) >= sum(phones.values()), timeout=60, interval=0.5)
    time.sleep(2)
    got = arrived()
    progress = staff["verifikator"].notifications.get_broadcast(broadcast["id"])
    draft_phones = {national(p["phone"]) for p in draft_members}
    report(
        "broadcast to region 6471",
        sent=sum(phones.values()),
        delivered=sum(min(got[p], n) for p, n in phones.items()),
        duplicates=sum(max(0, got[p] - n) for p, n in phones.items()),
        lost=sum(max(0, n - got[p]) for p, n in phones.items()),
        to_draft_group=sum(got[p] for p in draft_phones),
        progress=progress,
    )
    assert got == phones
