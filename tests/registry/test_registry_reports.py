"""The registry's reports: groups and members by region and status, business types, mentoring
visits and revenue around each group's grant; all within the caller's region."""

# The data lies in provinces 65 (Kalimantan Utara) and 34 (DI Yogyakarta), which no test
# that commits (the end-to-end and client tests share these databases) writes to, so the
# exact counts below hold whatever ran before. Names (Samarinda, Semarang, ...) keep the
# places the tests were written for; the codes are their stand-ins in those provinces.

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from services.registry.models import GrantDisbursement
from shared.events.envelope import new_envelope
from shared.events.signing import sign
from shared.timezones import zone_of

from registry_factories import member_payload

TODAY = datetime.now(UTC).astimezone(zone_of("65")).date()
# Districts no other test writes to, so the figures are exactly this module's groups.
BALIKPAPAN_A, BALIKPAPAN_B, SEMARANG = "6571051001", "6571061001", "3474051001"


def day(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


class Seeder:
    """Groups, members, visits and disbursements made as the field and the grant service
    make them: through the registry's API and its event consumer."""

    def __init__(self, apps, clients, auth):
        self.apps, self.client, self.auth = apps, clients["registry"], auth
        self.field_64 = auth("pendamping", region="6571")
        self.field_33 = auth("pendamping", region="34")
        self.verifier = auth("verifikator", region="6571")

    def group(self, region_code: str, business_type: str | None, headers=None) -> str:
        body = {"name": f"KUBE {uuid.uuid4().hex[:8]}", "region_code": region_code}
        if business_type is not None:
            body["business_type"] = business_type
        made = self.client.post("/api/v1/groups", json=body, headers=headers or self.field_64)
        assert made.status_code == 201, made.json
        return made.json["id"]

    def member(self, group_id: str, role: str = "anggota", headers=None) -> str:
        added = self.client.post(
            f"/api/v1/groups/{group_id}/members",
            json=member_payload(role=role),
            headers=headers or self.field_64,
        )
        assert added.status_code == 201, added.json
        return added.json["id"]

    def status(self, group_id: str, action: str) -> None:
        changed = self.client.post(
            f"/api/v1/groups/{group_id}/status",
            json={"action": action, "reason": "uji"},
            headers=self.verifier,
        )
        assert changed.status_code == 200, changed.json

    def visit(self, group_id: str, days_ago: int, revenue: int | None) -> None:
        body = {"visited_on": day(days_ago), "topics": ["marketing"], "monthly_revenue": revenue}
        made = self.client.post(
            f"/api/v1/groups/{group_id}/visits", json=body, headers=self.field_64
        )
        assert made.status_code == 201, made.json

    def disbursed(self, group_id: str, days_ago: int, grant_id: str | None = None) -> dict:
        """Hand a grant.disbursed to the registry's consumer, signed as the grant service
        signs it; return the envelope."""
        grant = {
            "grant_id": grant_id or str(uuid.uuid4()),
            "version": 6,
            "program_id": str(uuid.uuid4()),
            "group_id": group_id,
            "group_name": "KUBE",
            "region_code": BALIKPAPAN_A,
            "stage": "disbursed",
            "amount": 20_000_000,
            "workflow_key": "regional",
            "workflow_version": 1,
            "due_at": None,
        }
        payload = {
            "grant": grant,
            "amount": 20_000_000,
            "transfer_reference": "BRI-TRX-1",
            "transfer_date": day(days_ago),
            "report_due_at": None,
        }
        envelope = new_envelope("grant.disbursed", payload, source="grants", correlation_id=None)
        context = self.apps["registry"].extensions["kube"]
        envelope["signature"] = sign(envelope, context.settings.event_signing_keys[0])
        assert context.consumer.handle(envelope) == "handled"
        return envelope


@pytest.fixture
def seeded(apps, clients, auth) -> dict:
    """Five groups in Balikpapan (two districts) and one in Semarang:

    - a: 657105, Tempe, active with 5 members; visited 200, 150, 100, 50 and 10 days ago;
      first grant paid 100 days ago (another 30 days ago)
    - b: 657105, tempe, draft with 2 members of whom 1 removed; visited 120 and 20 days ago;
      grant paid 100 days ago
    - c: 657106, Jahit, dissolved, no members; grant paid 40 days ago
    - e: 657106, no business type, draft; visited 200 days ago
    - f: 657106, jahit, draft, never visited
    - d: 347105, tempe, draft with 1 member
    """
    seed = Seeder(apps, clients, auth)
    a = seed.group(BALIKPAPAN_A, "Tempe")
    for role in ("ketua", "sekretaris", "bendahara", "anggota", "anggota"):
        seed.member(a, role)
    seed.status(a, "activate")
    b = seed.group(BALIKPAPAN_A, "tempe")
    seed.member(b, "ketua")
    gone = seed.member(b)
    removed = clients["registry"].delete(
        f"/api/v1/groups/{b}/members/{gone}", headers=seed.field_64
    )
    assert removed.status_code == 200, removed.json
    c = seed.group(BALIKPAPAN_B, "Jahit")
    seed.status(c, "dissolve")
    e = seed.group(BALIKPAPAN_B, None)
    f = seed.group(BALIKPAPAN_B, "jahit")
    d = seed.group(SEMARANG, "tempe", headers=seed.field_33)
    seed.member(d, "ketua", headers=seed.field_33)
    # a: before the grant 1.0, 1.2 and (on the day) 1.3 million, after it 2.0 and 2.5 million.
    for days_ago, revenue in ((200, 1_000_000), (150, 1_200_000), (100, 1_300_000)):
        seed.visit(a, days_ago, revenue)
    for days_ago, revenue in ((50, 2_000_000), (10, 2_500_000)):
        seed.visit(a, days_ago, revenue)
    seed.visit(b, 120, 800_000)
    seed.visit(b, 20, 600_000)
    seed.visit(e, 200, None)
    seed.disbursed(a, 100)
    seed.disbursed(a, 30)  # a second grant: the first one splits the visits
    seed.disbursed(b, 100)
    seed.disbursed(c, 40)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "seed": seed}


def report(clients, headers, name: str, **params):
    return clients["registry"].get(f"/api/v1/reports/{name}", query_string=params, headers=headers)


def rows_by_region(body: dict) -> dict:
    return {row["region_code"]: row for row in body["rows"]}


def statuses(**counts) -> dict:
    return {"draft": 0, "active": 0, "suspended": 0, "dissolved": 0, **counts}


def test_groups_and_current_members_by_district_and_status(clients, auth, seeded):
    body = report(clients, auth("admin"), "groups", level="district", region="6571").json
    assert body["rows"] == [
        {
            "region_code": "657105",
            "region_name": None,
            "groups": 2,
            "members": 6,
            "by_status": statuses(draft=1, active=1),
        },
        {
            "region_code": "657106",
            "region_name": None,
            "groups": 3,
            "members": 0,
            "by_status": statuses(draft=2, dissolved=1),
        },
    ]
    everywhere = statuses(draft=3, active=1, dissolved=1)
    assert body["total"] == {"groups": 5, "members": 6, "by_status": everywhere}


def test_rows_carry_the_region_name_once_the_region_table_has_it(clients, auth, seeded, apps):
    from services.registry.models import Region

    with apps["registry"].extensions["kube"].db.transaction() as session:
        session.add(Region(code="6571", name="KOTA TARAKAN", level="regency", parent_code="65"))
    body = report(clients, auth("admin"), "groups", level="regency", region="6571").json
    assert [(r["region_code"], r["region_name"], r["groups"]) for r in body["rows"]] == [
        ("6571", "KOTA TARAKAN", 5)
    ]


def test_a_region_33_caller_never_counts_region_64_and_nationwide_sees_both(clients, auth, seeded):
    semarang = auth("kepala_dinas", region="34")
    own = report(clients, semarang, "groups", level="province").json
    assert set(rows_by_region(own)) == {"34"}
    narrowed = report(clients, semarang, "groups", level="district", region="347405").json
    assert narrowed["total"] == {"groups": 1, "members": 1, "by_status": statuses(draft=1)}
    for name in ("groups", "visits", "revenue", "business-types"):
        refused = report(clients, semarang, name, region="6571")
        assert refused.status_code == 422, name
        assert [e["field"] for e in refused.json["errors"]] == ["region"]
    nationwide = report(clients, auth("admin"), "groups", level="province").json
    assert {"34", "65"} <= set(rows_by_region(nationwide))
    both = [report(clients, auth("admin"), "groups", region=r).json for r in ("6571", "347405")]
    assert [b["total"]["groups"] for b in both] == [5, 1]


def test_a_region_wider_than_the_callers_is_refused_naming_region(clients, auth, seeded):
    balikpapan = auth("auditor", region="6571")
    refused = report(clients, balikpapan, "groups", level="regency", region="65")
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json["errors"]] == ["region"]
    body = report(clients, balikpapan, "groups", level="regency").json
    assert set(rows_by_region(body)) == {"6571"}
    assert body["total"]["groups"] == 5


def test_an_empty_region_answers_zeros(clients, auth, seeded):
    body = report(clients, auth("admin"), "groups", region="9171").json
    assert body == {"rows": [], "total": {"groups": 0, "members": 0, "by_status": statuses()}}
    revenue = report(clients, auth("admin"), "revenue", region="9171").json["total"]
    assert revenue["groups_with_grant"] == 0 and revenue["median_revenue_before"] is None


def test_business_types_compare_in_lower_case_most_common_first(clients, auth, seeded):
    body = report(clients, auth("pendamping", region="6571"), "business-types").json
    assert body["rows"] == [
        {"business_type": "jahit", "groups": 2, "members": 0},
        {"business_type": "tempe", "groups": 2, "members": 6},
        {"business_type": None, "groups": 1, "members": 0},
    ]
    assert body["total"] == {"groups": 5, "members": 6}
    # Each row's key finds its groups in the group list.
    listed = clients["registry"].get(
        "/api/v1/groups",
        query_string={"business_type": "tempe", "region": "6571"},
        headers=auth("pendamping", region="6571"),
    )
    assert listed.json["total"] == 2


def test_visits_per_district_leave_dissolved_groups_out(clients, auth, seeded):
    body = report(clients, auth("admin"), "visits", level="district", region="6571").json
    assert body["as_of"] == TODAY.isoformat() and body["window_days"] == 90
    region = rows_by_region(body)
    assert region["657105"] == {
        "region_code": "657105",
        "region_name": None,
        "groups": 2,
        "visits": 7,
        "groups_visited": 2,
        "groups_visited_pct": 100.0,
        "visits_per_group": 3.5,
        "groups_not_visited_recently": 0,
    }
    # c is dissolved; e was visited 200 days ago, f never.
    assert region["657106"] | {"region_code": None} == {
        "region_code": None,
        "region_name": None,
        "groups": 2,
        "visits": 1,
        "groups_visited": 1,
        "groups_visited_pct": 50.0,
        "visits_per_group": 0.5,
        "groups_not_visited_recently": 2,
    }
    assert body["total"]["groups"] == 4 and body["total"]["visits_per_group"] == 2.0
    assert body["total"]["groups_visited_pct"] == 75.0


def test_revenue_medians_before_and_after_each_groups_first_grant(clients, auth, seeded):
    body = report(clients, auth("admin"), "revenue", level="district", region="6571").json
    region = rows_by_region(body)
    # a: median before of 1.0, 1.2, 1.3 million (the day of the transfer counts as before) is
    # 1.2 million, after of 2.0 and 2.5 is 2.25; b: 0.8 before, 0.6 after.
    assert region["657105"] == {
        "region_code": "657105",
        "region_name": None,
        "groups_with_grant": 2,
        "groups_compared": 2,
        "median_revenue_before": 1_000_000,
        "median_revenue_after": 1_425_000,
        "groups_improved": 1,
        "groups_improved_pct": 50.0,
    }
    # c has a grant but no visits: counted, not compared.
    assert region["657106"]["groups_with_grant"] == 1
    assert region["657106"]["groups_compared"] == 0
    assert region["657106"]["median_revenue_before"] is None
    assert body["total"]["groups_with_grant"] == 3 and body["total"]["groups_compared"] == 2


def test_each_report_is_one_statement(clients, auth, seeded, apps):
    from test_reads import statements

    for name in ("groups", "business-types", "visits", "revenue"):
        with statements(apps) as sent:
            assert report(clients, auth("admin"), name, region="6571").status_code == 200
        assert len(sent) == 1, (name, sent)


def test_a_disbursement_is_kept_once_whatever_arrives_again(apps, clients, auth, seeded):
    seed = seeded["seed"]
    consumer = apps["registry"].extensions["kube"].consumer
    grant_id = str(uuid.uuid4())
    envelope = seed.disbursed(seeded["f"], 5, grant_id=grant_id)
    assert consumer.handle(envelope) == "duplicate"
    seed.disbursed(seeded["f"], 1, grant_id=grant_id)  # the same grant in a new event
    with apps["registry"].extensions["kube"].db.transaction() as session:
        kept = session.get(GrantDisbursement, uuid.UUID(grant_id))
        assert kept.disbursed_on == date.fromisoformat(day(5))


@pytest.mark.parametrize(
    ("name", "params", "fields"),
    [
        ("groups", {"level": "village"}, ["level"]),
        ("groups", {"region": "64x"}, ["region"]),
        ("visits", {"region": "657"}, ["region"]),
        ("revenue", {"level": "kabupaten", "region": "1"}, ["level", "region"]),
        ("business-types", {"region": ""}, ["region"]),
    ],
)
def test_bad_parameters_are_422_naming_each_field(clients, auth, name, params, fields):
    response = report(clients, auth("admin"), name, **params)
    assert response.status_code == 422
    assert sorted(e["field"] for e in response.json["errors"]) == fields
