"""The report endpoints: figures for known seeded applications, limited to the caller's
region, grouped by region level, narrowed by `region`, and bad parameters named."""

# The data lies in provinces 65 (Kalimantan Utara) and 34 (DI Yogyakarta), which no test
# that commits (the end-to-end and client tests share these databases) writes to, so the
# exact counts below hold whatever ran before. Names (Samarinda, Semarang, ...) keep the
# places the tests were written for; the codes are their stand-ins in those provinces.

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text

from services.grants.calendar import WorkingCalendar
from services.grants.reports import percent

from grant_factories import Office, announce_group, walk

REPORTS = "/api/v1/reports"
SAMARINDA, SAMARINDA_2, BALIKPAPAN = "6572011001", "6572021001", "6571011001"
SEMARANG = "3474011001"
LEAVE_DAY = date(2026, 11, 12)  # a Thursday set as collective leave for these tests


def at(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def run_sql(apps, statement: str, **values) -> None:
    with apps["grants"].extensions["kube"].db.transaction() as session:
        session.execute(text(statement), values)


def backdate(apps, grant: dict, times: list[datetime]) -> None:
    """Set when each step of the application's history happened, oldest first."""
    for seq, moment in enumerate(times, start=1):
        run_sql(
            apps,
            "UPDATE grant_audit SET at = :at WHERE grant_id = :g AND seq = :seq",
            at=moment,
            g=grant["id"],
            seq=seq,
        )


@pytest.fixture
def seeded(clients, auth, apps):
    """Applications in two provinces at known stages, with known history times:

    - `done` (Samarinda, 20 members' worth: Rp 20.000.000): disbursed and reported on time;
    - `returned` (Balikpapan, Rp 10.000.000): submitted, returned to draft;
    - `rejected` (Samarinda, Rp 16.000.000): verified, then rejected;
    - `paid` (Samarinda, Rp 18.000.000): disbursed long ago, no report: overdue;
    - `waiting` (Samarinda, Rp 14.000.000, the national programme): submitted, past due;
    - `semarang` (Jawa Tengah, Rp 12.000.000): approved.
    """
    kaltim, jateng = Office(clients["grants"], auth, "65"), Office(clients["grants"], auth, "34")
    put = clients["grants"].put(
        "/api/v1/calendar/2026",
        json={"days": [{"day": LEAVE_DAY.isoformat(), "description": "Cuti bersama (uji)"}]},
        headers=auth("admin"),
    )
    assert put.status_code == 200, put.json
    p64 = kaltim.program(name="UEP Kaltim 2026", region_code="65")
    p33 = jateng.program(name="UEP Jateng 2026", region_code="34")
    national = kaltim.program(name="UEP APBN 2026", funding_source="apbn", region_code=None)

    def group(region, members):
        return announce_group(apps, region_code=region, members=members)

    done = walk(
        kaltim,
        kaltim.apply(p64["id"], group(SAMARINDA, 10)),
        ["submit", "verify", "approve", "disburse", "report"],
    )
    returned = kaltim.apply(p64["id"], group(BALIKPAPAN, 5))
    returned = walk(kaltim, returned, ["submit"])
    returned = kaltim.move(returned, "return", "verifikator", comment="KK belum lengkap")
    rejected = walk(kaltim, kaltim.apply(p64["id"], group(SAMARINDA_2, 8)), ["submit", "verify"])
    rejected = kaltim.move(rejected, "reject", "kepala_dinas", sub="kepala", comment="Ganda")
    paid = walk(
        kaltim,
        kaltim.apply(p64["id"], group(SAMARINDA, 9)),
        ["submit", "verify", "approve", "disburse"],
    )
    waiting = walk(kaltim, kaltim.apply(national["id"], group(SAMARINDA, 7)), ["submit"])
    semarang = walk(
        jateng, jateng.apply(p33["id"], group(SEMARANG, 6)), ["submit", "verify", "approve"]
    )

    # done: made and submitted Monday 2 November 09:00 WITA; verified at 00:30 WITA on Monday
    # the 9th (still Sunday in UTC); approved Monday the 16th (the 12th is leave); paid on the
    # 17th; reported on the 20th.
    backdate(
        apps,
        done,
        [
            at(2026, 11, 2, 1),
            at(2026, 11, 2, 2),
            at(2026, 11, 8, 16, 30),
            at(2026, 11, 16, 2),
            at(2026, 11, 17, 2),
            at(2026, 11, 20, 2),
        ],
    )
    # semarang (WIB): submitted Monday 2 November, verified Wednesday the 4th, approved
    # Tuesday the 10th.
    backdate(
        apps,
        semarang,
        [at(2026, 11, 2, 1), at(2026, 11, 2, 2), at(2026, 11, 4, 2), at(2026, 11, 10, 2)],
    )
    backdate(
        apps,
        paid,
        [
            at(2026, 11, 2, 1),
            at(2026, 11, 2, 2),
            at(2026, 11, 3, 2),
            at(2026, 11, 13, 2),
            at(2026, 11, 16, 2),
        ],
    )
    run_sql(apps, "UPDATE grants SET transfer_date = '2020-01-02' WHERE id = :g", g=paid["id"])
    run_sql(apps, "UPDATE grants SET due_at = :d WHERE id = :g", d=at(2020, 1, 1), g=waiting["id"])
    return {
        "done": done,
        "returned": returned,
        "rejected": rejected,
        "paid": paid,
        "waiting": waiting,
        "semarang": semarang,
        "programs": {"65": p64, "34": p33, "national": national},
    }


def get(clients, auth, path, *roles, scope=None, **query):
    """A report as a caller with `roles` in `scope` (the token's region; by default province 65
    for staff, nationwide for admin and service) sees it."""
    if scope is None and not {"admin", "service"} & set(roles):
        scope = "65"
    return clients["grants"].get(
        f"{REPORTS}/{path}", query_string=query, headers=auth(*roles, region=scope)
    )


def report(clients, auth, path, *roles, scope=None, **query) -> dict:
    response = get(clients, auth, path, *roles, scope=scope, **query)
    assert response.status_code == 200, response.json
    return response.json


def seeded_program_ids(seeded) -> set[str]:
    return {program["id"] for program in seeded["programs"].values()}


def by_stage(rows: list[dict]) -> dict:
    return {row["stage"]: row for row in rows}


def test_pipeline_counts_and_sums_by_stage_region_and_programme(seeded, clients, auth):
    body = report(clients, auth, "pipeline", "kepala_dinas", level="regency")
    stages = by_stage(body["stages"])
    assert [s["stage"] for s in body["stages"]][:6] == [
        "draft",
        "submitted",
        "verified",
        "recommended",
        "approved",
        "disbursed",
    ]
    assert (stages["draft"]["count"], stages["draft"]["amount"]) == (1, 10_000_000)
    assert (stages["submitted"]["count"], stages["submitted"]["amount"]) == (1, 14_000_000)
    assert (stages["reported"]["count"], stages["reported"]["amount"]) == (1, 20_000_000)
    assert (stages["disbursed"]["count"], stages["disbursed"]["amount"]) == (1, 18_000_000)
    assert stages["rejected"]["count"] == 1 and stages["approved"]["count"] == 0
    assert body["total"] == {"count": 5, "amount": 78_000_000}
    # A region-64 caller never counts Semarang's approved application.
    regions = {r["region_code"]: r for r in body["regions"]}
    assert set(regions) == {"6571", "6572"}
    assert regions["6571"]["total"] == {"count": 1, "amount": 10_000_000}
    assert regions["6572"]["total"] == {"count": 4, "amount": 68_000_000}
    programs = {p["name"]: p for p in body["programs"]}
    # (Other tests' national programmes, open to every region, may be listed too.)
    assert {"UEP Kaltim 2026", "UEP APBN 2026"} <= set(programs)
    assert "UEP Jateng 2026" not in programs
    assert programs["UEP APBN 2026"]["total"] == {"count": 1, "amount": 14_000_000}

    # Nationwide, both provinces (other tests' committed data may add other provinces' rows).
    everyone = report(clients, auth, "pipeline", "admin", level="province")
    rows = {r["region_code"]: r["total"]["count"] for r in everyone["regions"]}
    assert (rows["65"], rows["34"]) == (5, 1)
    jateng = report(clients, auth, "pipeline", "kepala_dinas", scope="34")
    assert by_stage(jateng["stages"])["approved"]["count"] == 1


def test_pipeline_filters_by_region_programme_and_fiscal_year(seeded, clients, auth):
    samarinda = report(clients, auth, "pipeline", "auditor", region="6572")
    assert samarinda["region"] == "6572" and samarinda["regions"] == []
    assert samarinda["total"]["count"] == 4
    national = seeded["programs"]["national"]["id"]
    only = report(clients, auth, "pipeline", "auditor", program_id=national)
    assert only["total"] == {"count": 1, "amount": 14_000_000}
    assert report(clients, auth, "pipeline", "auditor", fiscal_year=2025)["total"]["count"] == 0
    # An empty region answers zeros, every stage listed.
    empty = report(clients, auth, "pipeline", "auditor", region="6509", level="district")
    assert empty["total"] == {"count": 0, "amount": 0} and empty["regions"] == []
    assert len(empty["stages"]) == 12 and all(s["count"] == 0 for s in empty["stages"])


def test_stage_durations_count_working_days_on_the_deadline_calendar(seeded, clients, auth):
    body = report(clients, auth, "stage-durations", "admin", level="district")
    regions = {r["region_code"]: by_stage(r["stages"]) for r in body["regions"]}
    samarinda, semarang = regions["657201"], regions["347401"]
    # Submitted: `done` from Monday 2 to Monday 9 November (the local WITA day; still the 8th
    # in UTC): 5 working days; `paid` 2 -> 3 November: 1.
    assert samarinda["submitted"] == {
        "stage": "submitted",
        "stays": 2,
        "median_working_days": 3.0,
        "p90_working_days": 4.6,
    }
    # Verified: `done` 9 -> 16 November, the 12th being collective leave: 4; `paid` 3 -> 13
    # November: 7 (again without the 12th).
    calendar = WorkingCalendar(leave_days={LEAVE_DAY})
    assert calendar.working_days_between(date(2026, 11, 9), date(2026, 11, 16)) == 4
    assert calendar.working_days_between(date(2026, 11, 3), date(2026, 11, 13)) == 7
    assert samarinda["verified"]["median_working_days"] == 5.5
    assert samarinda["verified"]["p90_working_days"] == 6.7
    # Approved until paid: Monday 16 -> Tuesday 17, and Friday 13 -> Monday 16: 1 each.
    assert samarinda["approved"]["median_working_days"] == 1.0
    # Stays not yet ended (`done` reported, `paid` disbursed) are not counted.
    assert samarinda["disbursed"]["stays"] == 1 and samarinda["reported"]["stays"] == 0
    assert samarinda["reported"]["median_working_days"] is None
    # Semarang (WIB): submitted 2 -> 4 November: 2; verified 4 -> 10 November: 4.
    assert semarang["submitted"]["median_working_days"] == 2.0
    assert semarang["verified"]["median_working_days"] == 4.0
    # Province 65's submitted stays: 5, 1 and two of 0 (returned, rejected at once).
    kaltim = report(clients, auth, "stage-durations", "kepala_dinas")
    submitted = by_stage(kaltim["stages"])["submitted"]
    assert submitted["stays"] == 4
    assert submitted["median_working_days"] == 0.5
    assert submitted["p90_working_days"] == 3.8  # rank 0.9 * 3 = 2.7: 1 + 0.7 * (5 - 1)
    # A region-33 caller sees Semarang's stays only.
    own = report(clients, auth, "stage-durations", "kepala_dinas", scope="34")
    assert by_stage(own["stages"])["submitted"]["stays"] == 1
    assert [s["stage"] for s in own["stages"]][-1] == "monitored"


def test_overdue_counts_open_applications_past_their_due_time(seeded, clients, auth):
    body = report(clients, auth, "overdue", "kepala_dinas", level="regency")
    stages = by_stage(body["stages"])
    # The national application waits past its verification deadline. `paid` keeps the due
    # time set when it was disbursed (its transfer date was moved after), `done` is reported.
    assert stages["submitted"] == {"stage": "submitted", "overdue": 1, "with_deadline": 1}
    assert stages["disbursed"]["with_deadline"] == 1
    assert stages["reported"]["with_deadline"] == 1 and stages["reported"]["overdue"] == 0
    assert body["total"]["overdue"] == 1 and body["total"]["with_deadline"] == 3
    assert body["total"]["overdue_pct"] == 33.3
    regions = {r["region_code"]: r["total"] for r in body["regions"]}
    assert regions == {"6572": {"overdue": 1, "with_deadline": 3, "overdue_pct": 33.3}}
    jateng = report(clients, auth, "overdue", "auditor", scope="34")
    assert jateng["total"] == {"overdue": 0, "with_deadline": 0, "overdue_pct": None}


def test_budgets_from_the_ledger_with_the_regions_part(seeded, clients, auth):
    body = report(clients, auth, "budgets", "auditor", fiscal_year=2026)
    programs = {p["name"]: p for p in body["programs"]}
    # A region-64 caller sees its province's programme and the national one, not Jateng's.
    # (Other tests' national programmes, open to every region, may be listed too.)
    assert {"UEP Kaltim 2026", "UEP APBN 2026"} <= set(programs)
    assert "UEP Jateng 2026" not in programs
    kaltim = programs["UEP Kaltim 2026"]
    assert kaltim["total_budget"] == 200_000_000
    assert (kaltim["reserved"], kaltim["disbursed"]) == (0, 38_000_000)
    assert kaltim["available"] == 162_000_000
    assert kaltim["absorption_pct"] == 19.0
    assert (kaltim["region_reserved"], kaltim["region_disbursed"]) == (0, 38_000_000)
    balikpapan = report(clients, auth, "budgets", "auditor", region="6571")
    kaltim_there = {p["name"]: p for p in balikpapan["programs"]}["UEP Kaltim 2026"]
    assert kaltim_there["disbursed"] == 38_000_000  # the programme's own ledger
    assert kaltim_there["region_disbursed"] == 0 and kaltim_there["region_absorption_pct"] == 0.0

    everyone = report(clients, auth, "budgets", "admin")
    jateng = {p["name"]: p for p in everyone["programs"]}["UEP Jateng 2026"]
    assert (jateng["reserved"], jateng["region_reserved"]) == (12_000_000, 12_000_000)
    ours = [p for p in everyone["programs"] if p["program_id"] in seeded_program_ids(seeded)]
    assert sum(p["total_budget"] for p in ours) == 600_000_000
    assert sum(p["disbursed"] for p in ours) == 38_000_000
    assert everyone["total"]["total_budget"] >= 600_000_000
    assert report(clients, auth, "budgets", "admin", fiscal_year=2030)["programs"] == []


def test_usage_reports_on_time_late_and_overdue(seeded, clients, auth, apps):
    body = report(clients, auth, "usage-reports", "kepala_dinas", level="district")
    assert body["total"] == {
        "disbursed": 2,
        "reported_on_time": 1,
        "reported_late": 0,
        "overdue": 1,
        "not_yet_due": 0,
        "on_time_pct": 50.0,
    }
    assert [r["region_code"] for r in body["regions"]] == ["657201"]
    # Reported after its due date (the transfer date plus 90 days, end of day WITA): late.
    done = seeded["done"]
    run_sql(apps, "UPDATE grants SET transfer_date = '2026-08-01' WHERE id = :g", g=done["id"])
    later = report(clients, auth, "usage-reports", "kepala_dinas")["total"]
    assert (later["reported_on_time"], later["reported_late"], later["on_time_pct"]) == (0, 1, 0.0)
    jateng = report(clients, auth, "usage-reports", "auditor", scope="34")["total"]
    assert jateng["disbursed"] == 0 and jateng["on_time_pct"] is None


def test_decision_rates_from_the_history(seeded, clients, auth):
    kaltim = report(clients, auth, "decisions", "auditor")["total"]
    assert kaltim == {
        "submissions": 5,
        "returns": 1,
        "verifications": 3,
        "recommendations": 0,
        "decided": 3,
        "approved": 2,
        "rejected": 1,
        "reports": 1,
        "report_returns": 0,
        "approval_pct": 66.7,
        "rejection_pct": 33.3,
        "return_pct": 20.0,
        "report_return_pct": 0.0,
    }
    everyone = report(clients, auth, "decisions", "admin", level="province")
    regions = {r["region_code"]: r for r in everyone["regions"]}
    both = [regions["65"], regions["34"]]
    assert sum(r["approved"] for r in both) == 3 and sum(r["decided"] for r in both) == 4
    assert regions["34"]["approval_pct"] == 100.0 and regions["34"]["submissions"] == 1
    assert regions["65"]["submissions"] == 5


@pytest.mark.parametrize(
    "path", ["pipeline", "stage-durations", "overdue", "budgets", "usage-reports", "decisions"]
)
def test_a_region_outside_the_callers_is_422_naming_region(seeded, clients, auth, path):
    response = get(clients, auth, path, "auditor", region="34")
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["region"]
    assert "Semarang" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("pipeline", {"level": "village"}, "level"),
        ("pipeline", {"region": "657"}, "region"),
        ("pipeline", {"fiscal_year": "1999"}, "fiscal_year"),
        ("stage-durations", {"program_id": "not-a-uuid"}, "program_id"),
        ("overdue", {"level": ""}, "level"),
    ],
)
def test_bad_parameters_are_422_naming_each(clients, auth, path, query, field):
    response = get(clients, auth, path, "auditor", **query)
    assert response.status_code == 422, response.json
    assert field in [e["field"] for e in response.json["errors"]]


def test_an_empty_database_answers_zeros(clients, auth):
    for path in ("pipeline", "stage-durations", "overdue", "usage-reports", "decisions"):
        body = report(clients, auth, path, "pendamping", region="6574", level="district")
        assert body["regions"] == []
    assert report(clients, auth, "decisions", "verifikator")["total"]["decided"] == 0


def test_day_numbers_give_the_calendars_working_days_between_any_two_days():
    calendar = WorkingCalendar(leave_days={date(2026, 12, 24)})
    first = date(2026, 12, 1)
    numbers = calendar.working_day_numbers(first, date(2027, 1, 10))
    days = [date.fromordinal(first.toordinal() + i) for i in range(len(numbers))]
    assert days[-1] == date(2027, 1, 10)
    for i, start in enumerate(days):
        for j in range(i, len(days)):
            assert numbers[j] - numbers[i] == calendar.working_days_between(start, days[j])


def test_percentages_have_one_decimal_rounded_half_up_and_none_without_a_base():
    assert percent(1, 3) == 33.3
    assert percent(2, 3) == 66.7
    assert percent(1, 8) == 12.5
    assert percent(1, 16) == 6.3  # 6.25
    assert percent(0, 5) == 0.0
    assert percent(3, 0) is None
