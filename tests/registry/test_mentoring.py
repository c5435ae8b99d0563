"""Mentoring visits and what a group's read shows of them."""

from __future__ import annotations

from datetime import date, timedelta


def visit(clients, headers, group_id, **fields):
    body = {"visited_on": "2026-01-10", "topics": ["marketing"], **fields}
    return clients["registry"].post(f"/api/v1/groups/{group_id}/visits", json=body, headers=headers)


def test_visits_feed_the_groups_last_visit_and_revenue_trend(clients, officer, make_group):
    group = make_group()
    for day, revenue in (
        ("2026-01-10", 1_500_000),
        ("2026-02-10", 1_750_000),
        ("2026-03-10", None),
        ("2026-04-10", 2_100_000),
    ):
        response = visit(
            clients,
            officer,
            group["id"],
            visited_on=day,
            monthly_revenue=revenue,
            topics=["bookkeeping", "marketing"],
            notes="Catatan kas rapi",
        )
        assert response.status_code == 201, response.json
    read = clients["registry"].get(f"/api/v1/groups/{group['id']}", headers=officer).json
    assert read["last_visit"]["visited_on"] == "2026-04-10"
    assert [p["monthly_revenue"] for p in read["revenue_trend"]] == [
        1_500_000,
        1_750_000,
        2_100_000,
    ]
    assert read["revenue_direction"] == "rising"
    listed = clients["registry"].get(f"/api/v1/groups/{group['id']}/visits", headers=officer)
    assert listed.json["total"] == 4 and listed.json["items"][0]["visited_on"] == "2026-04-10"
    assert listed.json["items"][0]["pendamping"] == "tester"


def test_a_group_never_visited_has_no_trend(clients, officer, make_group):
    read = clients["registry"].get(f"/api/v1/groups/{make_group()['id']}", headers=officer).json
    assert read["last_visit"] is None and read["revenue_trend"] == []
    assert read["revenue_direction"] is None


def test_bad_visits_are_422_naming_each_field(clients, officer, make_group):
    group = make_group()
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    response = visit(
        clients, officer, group["id"], visited_on=tomorrow, topics=["gossip"], monthly_revenue=-5
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {
        "visited_on",
        "topics.0",
        "monthly_revenue",
    }
    empty = visit(clients, officer, group["id"], topics=[])
    assert empty.status_code == 422
    fractional = visit(clients, officer, group["id"], monthly_revenue=1500.5)
    assert fractional.status_code == 422  # money is whole rupiah


def test_only_pendamping_and_admins_record_visits(clients, auth, make_group):
    group = make_group()
    assert visit(clients, auth("verifikator"), group["id"]).status_code == 403
    assert visit(clients, auth("pendamping", region="6471"), group["id"]).status_code == 404
