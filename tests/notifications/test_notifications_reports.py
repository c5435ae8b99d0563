"""The notification reports: messages by status, channel and region, members reached, and
opt-outs among members, for known seeded data, inside the caller's region only.

The seeded regencies (6498, 6497, 3398) are used by no other test, so figures filtered to
them are exact even beside data other tests committed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from shared.tokens import READERS

from notification_factories import members_of, opted_out, phone, reachable_group, stored_message

MESSAGES = "/api/v1/reports/messages"
REACH = "/api/v1/reports/reach"
OPT_OUTS = "/api/v1/reports/opt-outs"
EARLIER = datetime(2026, 1, 5, 3, tzinfo=UTC)


@pytest.fixture
def seeded(apps):
    """Four groups in three regencies of two provinces, their messages and opt-outs."""

    def group(region_code: str, members: int, status: str = "active"):
        group_id, _, _ = reachable_group(
            apps, members=members, region_code=region_code, status=status
        )
        return group_id, members_of(apps, group_id)

    def message(group_id, region_code, member, status, **fields):
        stored_message(
            apps,
            group_id=group_id,
            region_code=region_code,
            recipient_key=member[0],
            status=status,
            **fields,
        )

    a, a_members = group("6498011001", 3)
    b, b_members = group("6498021001", 2)
    c, c_members = group("6497011001", 2)
    d, d_members = group("3398011001", 2)
    _, e_members = group("6498011001", 1, status="dissolved")
    # Group a: each SMS status that ends, and an email to its first member.
    for member, status in zip(a_members, ("delivered", "sent", "failed"), strict=True):
        message(a, "6498011001", member, status)
    message(a, "6498011001", a_members[0], "sent", channel="email", recipient="k@kube.id")
    # An office mailbox's email about group a: a message, but no member reached.
    stored_message(
        apps,
        group_id=a,
        region_code="6498011001",
        recipient_key="kantor@dinsos.kaltimprov.go.id",
        recipient="kantor@dinsos.kaltimprov.go.id",
        status="sent",
        channel="email",
    )
    message(b, "6498021001", b_members[0], "queued")
    message(b, "6498021001", b_members[1], "failed")
    message(c, "6497011001", c_members[0], "delivered", created_at=EARLIER)
    message(d, "3398011001", d_members[0], "delivered")
    message(d, "3398011001", d_members[1], "sending")
    opted_out(apps, a_members[2][1])
    opted_out(apps, d_members[0][1])
    opted_out(apps, e_members[0][1])  # a dissolved group's member: not counted
    opted_out(apps, phone())  # no member's number
    return {"a": a, "b": b, "c": c, "d": d}


def get(clients, auth, path, query="", *roles, region=None):
    return clients["notifications"].get(
        f"{path}?{query}", headers=auth(*(roles or ("kepala_dinas",)), region=region)
    )


def rows_by_region(answer: dict) -> dict:
    return {(r["region_code"], r.get("channel")): r for r in answer["rows"]}


def test_messages_are_counted_by_status_channel_and_region_with_delivery_rates(
    clients, auth, seeded
):
    answer = get(clients, auth, MESSAGES, "level=regency&region=6498")
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert (body["level"], body["region"], body["channel"]) == ("regency", "6498", None)
    rows = rows_by_region(body)
    assert set(rows) == {("6498", "email"), ("6498", "sms")}
    assert rows[("6498", "sms")] == {
        "region_code": "6498",
        "channel": "sms",
        "queued": 1,
        "sending": 0,
        "sent": 1,
        "delivered": 1,
        "failed": 2,
        "total": 5,
        # (sent + delivered) / (sent + delivered + failed); delivered / the same.
        "delivery_pct": 50.0,
        "confirmed_pct": 25.0,
    }
    assert rows[("6498", "email")]["sent"] == 2
    assert rows[("6498", "email")]["delivery_pct"] == 100.0
    assert rows[("6498", "email")]["confirmed_pct"] == 0.0
    assert body["total"] == {
        "queued": 1,
        "sending": 0,
        "sent": 3,
        "delivered": 1,
        "failed": 2,
        "total": 7,
        "delivery_pct": 66.7,
        "confirmed_pct": 16.7,
    }


def test_messages_group_by_district_and_filter_by_channel_and_period(clients, auth, seeded):
    by_district = rows_by_region(get(clients, auth, MESSAGES, "level=district&region=6498").json)
    assert {key: row["total"] for key, row in by_district.items()} == {
        ("649801", "email"): 2,
        ("649801", "sms"): 3,
        ("649802", "sms"): 2,
    }
    sms = get(clients, auth, MESSAGES, "level=regency&region=64&channel=sms").json
    sms_rows = rows_by_region(sms)
    assert sms["channel"] == "sms"
    assert all(channel == "sms" for _, channel in sms_rows)
    assert sms_rows[("6497", "sms")]["delivered"] == 1
    recent = quote((EARLIER + timedelta(days=1)).isoformat())
    since = get(clients, auth, MESSAGES, f"level=regency&region=6497&since={recent}")
    assert since.json["rows"] == [] and since.json["total"]["total"] == 0
    until = get(clients, auth, MESSAGES, f"level=regency&region=6497&until={recent}")
    assert until.json["total"]["delivered"] == 1


def test_a_region_33_caller_never_counts_region_64_and_a_nationwide_caller_sees_both(
    clients, auth, seeded
):
    central_java = get(clients, auth, MESSAGES, "level=regency", "verifikator", region="33").json
    assert central_java["region"] == "33"
    assert all(row["region_code"].startswith("33") for row in central_java["rows"])
    assert rows_by_region(central_java)[("3398", "sms")]["total"] == 2
    outside = get(clients, auth, MESSAGES, "region=6498", "verifikator", region="33")
    assert outside.status_code == 422
    assert [e["field"] for e in outside.json["errors"]] == ["region"]
    assert "6497" not in outside.get_data(as_text=True)
    nationwide = rows_by_region(get(clients, auth, MESSAGES, "level=regency", "admin").json)
    assert nationwide[("3398", "sms")]["delivered"] == 1
    assert nationwide[("6498", "sms")]["total"] == 5
    for path in (REACH, OPT_OUTS):
        answer = get(clients, auth, path, "level=district", "pendamping", region="3398").json
        assert [row["region_code"] for row in answer["rows"]] == ["339801"]


def test_a_level_coarser_than_the_callers_region_answers_one_row_for_that_region(
    clients, auth, seeded
):
    answer = get(clients, auth, MESSAGES, "level=province", "pendamping", region="6498").json
    assert answer["region"] == "6498"
    assert {row["region_code"] for row in answer["rows"]} == {"6498"}
    assert answer["total"]["total"] == 7


def test_reach_counts_distinct_members_and_groups_reached_not_office_mailboxes(
    clients, auth, seeded
):
    answer = get(clients, auth, REACH, "level=district&region=6498").json
    rows = {row["region_code"]: row for row in answer["rows"]}
    assert rows["649801"] == {
        "region_code": "649801",
        "members_messaged": 3,
        "members_reached": 2,
        "members_confirmed": 1,
        "reached_pct": 66.7,
        "groups_messaged": 1,
        "groups_reached": 1,
    }
    assert rows["649802"]["members_reached"] == 0
    assert rows["649802"]["groups_reached"] == 0
    assert answer["total"] == {
        "members_messaged": 5,
        "members_reached": 2,
        "members_confirmed": 1,
        "reached_pct": 40.0,
        "groups_messaged": 2,
        "groups_reached": 1,
    }
    recent = quote((EARLIER + timedelta(days=1)).isoformat())
    period = get(clients, auth, REACH, f"region=6497&until={recent}").json
    assert period["total"]["members_confirmed"] == 1
    assert period["until"].startswith("2026-01-06")


def test_reach_counts_members_not_what_else_a_message_was_addressed_to(clients, auth, apps):
    group_id, _, _ = reachable_group(apps, members=1, region_code="6495011001")
    member_id = members_of(apps, group_id)[0][0]
    for key, channel in (
        (member_id, "sms"),
        ("kantor-6495@dinsos.kaltimprov.go.id", "email"),
        # No mailbox for the responsible role: a failed message names the role instead.
        ("mailbox:verifikator", "email"),
    ):
        stored_message(
            apps,
            group_id=group_id,
            region_code="6495011001",
            recipient_key=key,
            recipient=key,
            status="sent",
            channel=channel,
        )
    answer = get(clients, auth, REACH, "region=6495").json
    assert answer["total"]["members_messaged"] == 1
    assert answer["total"]["members_reached"] == 1


def test_opt_outs_are_counted_among_members_and_never_show_a_number(clients, auth, seeded):
    answer = get(clients, auth, OPT_OUTS, "level=district&region=6498", "auditor")
    assert answer.status_code == 200, answer.json
    assert "+62" not in answer.get_data(as_text=True)
    rows = {row["region_code"]: row for row in answer.json["rows"]}
    assert rows["649801"] == {
        "region_code": "649801",
        "members": 3,  # the dissolved group's member is not counted
        "members_with_phone": 3,
        "opted_out": 1,
        "opted_out_pct": 33.3,
    }
    assert rows["649802"]["opted_out"] == 0 and rows["649802"]["opted_out_pct"] == 0.0
    assert answer.json["total"] == {
        "members": 5,
        "members_with_phone": 5,
        "opted_out": 1,
        "opted_out_pct": 20.0,
        "unattributed": None,
    }
    regional = get(clients, auth, OPT_OUTS, "", "kepala_dinas", region="33").json
    assert regional["total"]["unattributed"] is None
    nationwide = get(clients, auth, OPT_OUTS, "level=regency", "admin").json
    assert nationwide["total"]["unattributed"] >= 1
    assert {r["region_code"]: r for r in nationwide["rows"]}["3398"]["opted_out"] == 1


def test_an_empty_region_answers_zeros(clients, auth, seeded):
    messages = get(clients, auth, MESSAGES, "region=6496").json
    assert messages["rows"] == []
    assert messages["total"]["total"] == 0 and messages["total"]["delivery_pct"] is None
    reach = get(clients, auth, REACH, "region=6496").json
    assert reach["total"]["members_messaged"] == 0 and reach["total"]["reached_pct"] is None
    opt_outs = get(clients, auth, OPT_OUTS, "region=6496").json
    assert opt_outs["total"]["members"] == 0 and opt_outs["total"]["opted_out_pct"] is None


@pytest.mark.parametrize(
    ("path", "query", "fields"),
    [
        (MESSAGES, "level=county", ["level"]),
        (MESSAGES, "region=64x&channel=fax", ["channel", "region"]),
        (MESSAGES, "since=yesterday", ["since"]),
        (REACH, "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", ["until"]),
        (REACH, "until=2026-01-01T00:00:00", ["until"]),  # no time zone
        (OPT_OUTS, "region=649", ["region"]),
    ],
)
def test_bad_parameters_are_422_naming_each_field(clients, auth, path, query, fields):
    answer = get(clients, auth, path, query)
    assert answer.status_code == 422
    assert answer.content_type.startswith("application/problem+json")
    assert sorted(e["field"] for e in answer.json["errors"]) == fields


def test_every_staff_role_reads_the_reports_of_its_region(clients, auth):
    for role in READERS:
        for path in (MESSAGES, REACH, OPT_OUTS):
            assert get(clients, auth, path, "level=district", role).status_code == 200, role
