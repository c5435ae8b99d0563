"""Working days on the Indonesian calendar, and deadlines announced exactly once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from services.grants.calendar import WorkingCalendar
from services.grants.deadlines import announce_deadlines

from grant_factories import Office, announce_group, walk


def test_working_days_skip_weekends_public_holidays_and_collective_leave():
    calendar = WorkingCalendar(leave_days={date(2026, 12, 24)})
    # Wednesday 23 December 2026: the 24th is collective leave, the 25th Christmas, then a
    # weekend; the first working day after is Monday the 28th.
    assert calendar.add_working_days(date(2026, 12, 23), 1) == date(2026, 12, 28)
    assert not calendar.is_working_day(date(2026, 8, 17))  # Independence Day
    assert calendar.is_working_day(date(2026, 8, 18))
    assert calendar.working_days_between(date(2026, 12, 23), date(2026, 12, 28)) == 1


def test_a_deadline_ends_at_midnight_in_the_regions_own_zone():
    calendar = WorkingCalendar()
    # Monday 2 November 2026, 09:00 WITA (Samarinda); 10 working days later is Monday the 16th.
    entered = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    samarinda = calendar.due_at(entered, 10, "6472011001")
    semarang = calendar.due_at(entered, 10, "3374011001")
    assert samarinda == datetime(2026, 11, 16, 16, 0, tzinfo=UTC)  # midnight WITA (UTC+8)
    assert semarang == datetime(2026, 11, 16, 17, 0, tzinfo=UTC)  # midnight WIB (UTC+7)


def events_of(apps, grant_id, event_type: str) -> int:
    with apps["grants"].extensions["kube"].db.transaction() as session:
        return session.execute(
            text(
                "SELECT count(*) FROM outbox_events WHERE event_type = :t "
                "AND envelope->'payload'->'grant'->>'grant_id' = :g"
            ),
            {"t": event_type, "g": str(grant_id)},
        ).scalar()


@pytest.fixture
def office(clients, auth):
    return Office(clients["grants"], auth)


def test_a_missed_verification_deadline_is_announced_once_across_two_runs(office, apps):
    grant = walk(office, office.apply(office.program()["id"], announce_group(apps)), ["submit"])
    due = datetime.fromisoformat(grant["due_at"])
    expected = WorkingCalendar().due_at(
        datetime.fromisoformat(grant["stage_entered_at"]), 10, grant["region_code"]
    )
    assert due == expected
    db = apps["grants"].extensions["kube"]

    with db.db.transaction() as session:
        before = announce_deadlines(session, db.outbox, due - timedelta(minutes=1))
    assert events_of(apps, grant["id"], "grant.deadline_passed") == 0
    for _ in range(2):
        with db.db.transaction() as session:
            announce_deadlines(session, db.outbox, due + timedelta(minutes=1))
    assert before["deadline_passed"] == 0
    assert events_of(apps, grant["id"], "grant.deadline_passed") == 1
    listed = office.client.get(
        "/api/v1/grants?overdue=false", headers=office.headers("auditor")
    ).json
    assert grant["id"] in [g["id"] for g in listed["items"]]

    # Verified at last: the next stage has a deadline of its own, announced once too.
    grant = walk(office, grant, ["verify"])
    later = datetime.fromisoformat(grant["due_at"]) + timedelta(minutes=1)
    for _ in range(2):
        with db.db.transaction() as session:
            announce_deadlines(session, db.outbox, later)
    assert events_of(apps, grant["id"], "grant.deadline_passed") == 2


def test_a_usage_report_is_due_after_the_programmes_period_and_reminded_once(office, apps):
    program = office.program(report_due_days=30)
    grant = walk(
        office,
        office.apply(program["id"], announce_group(apps)),
        ["submit", "verify", "approve", "disburse"],
    )
    # Transferred on 25 November 2026 (the factories' date): due by the end of 25 December, WITA.
    assert datetime.fromisoformat(grant["due_at"]) == datetime(2026, 12, 25, 16, 0, tzinfo=UTC)
    db = apps["grants"].extensions["kube"]
    for _ in range(2):
        with db.db.transaction() as session:
            announce_deadlines(session, db.outbox, datetime(2026, 12, 20, tzinfo=UTC))
    assert events_of(apps, grant["id"], "grant.report_due") == 1
    assert events_of(apps, grant["id"], "grant.deadline_passed") == 0


def test_collective_leave_days_are_set_per_year_by_an_admin(clients, auth):
    client = clients["grants"]
    body = {"days": [{"day": "2026-12-24", "description": "Cuti bersama Natal"}]}
    assert (
        client.put("/api/v1/calendar/2026", json=body, headers=auth("verifikator")).status_code
        == 403
    )
    response = client.put("/api/v1/calendar/2026", json=body, headers=auth("admin"))
    assert response.status_code == 200, response.json
    days = {d["day"]: d["kind"] for d in response.json["days_off"]}
    assert days["2026-12-24"] == "collective_leave"
    assert days["2026-12-25"] == "public_holiday"
    wrong = client.put(
        "/api/v1/calendar/2026",
        json={"days": [{"day": "2027-01-02", "description": "Cuti bersama"}]},
        headers=auth("admin"),
    )
    assert wrong.status_code == 422
    assert [e["field"] for e in wrong.json["errors"]] == ["days.0.day"]
    assert client.get("/api/v1/calendar/1999", headers=auth()).status_code == 422
