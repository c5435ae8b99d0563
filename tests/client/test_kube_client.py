"""kube-client against the real platform: the three APIs under gunicorn, the relay and the
Celery workers as separate processes, called only through the client."""

from __future__ import annotations

import csv
import io

import pytest
import requests

from kube_client import NotFound, PreconditionFailed, ValidationFailed

from registry_factories import member_payload

pytestmark = pytest.mark.e2e

VILLAGE = "6472011001"
OFFICERS = ("ketua", "sekretaris", "bendahara")
IMPORT_COLUMNS = ["group_name", "village_code", "business_type", "nik", "kk_number", "name"]
IMPORT_COLUMNS += ["phone", "role"]


def members() -> list[dict]:
    """A complete group's members: its three officers and two anggota."""
    return [member_payload(role=role) for role in (*OFFICERS, "anggota", "anggota")]


class RecordingSession(requests.Session):
    """A requests session that notes each request it sends (an app's own session)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, dict]] = []

    def request(self, method, url, *args, **kwargs):
        self.sent.append((method, url, dict(kwargs.get("params") or {})))
        return super().request(method, url, *args, **kwargs)


def test_a_group_registered_with_its_members_reads_back_active(platform_client, unique):
    client = platform_client("verifikator", region="6472")
    people = members()

    registered = client.registry.register_group(
        {"name": unique("KUBE Klien"), "region_code": VILLAGE, "business_type": "tempe"},
        people,
    )

    assert registered["status"] == "active"
    group = client.registry.get_group(registered["id"])
    assert group["name"] == registered["name"]
    assert group["member_count"] == len(people)
    assert set(group["officers"]) == set(OFFICERS)
    listed = list(client.registry.list_members(group["id"]))
    assert sorted(m["name"] for m in listed) == sorted(p["name"] for p in people)
    memberships = client.registry.find_memberships(people[0]["nik"])
    assert [m["group_id"] for m in memberships if m["active"]] == [group["id"]]


def test_invalid_fields_raise_validation_failed_naming_each(platform_client):
    client = platform_client("pendamping", region="6472")
    with pytest.raises(ValidationFailed) as raised:
        client.registry.create_group(name="K", region_code="not-a-village")
    error = raised.value
    assert error.status == 422
    assert {"name", "region_code"} <= set(error.errors)
    assert all(error.errors[field] for field in ("name", "region_code"))
    assert error.body["status"] == 422


def test_another_regions_group_is_not_found(platform_client, unique):
    owner = platform_client("pendamping", region="6472")
    group = owner.registry.create_group(name=unique("KUBE Samarinda"), region_code=VILLAGE)

    outsider = platform_client("pendamping", region="6471")
    with pytest.raises(NotFound) as raised:
        outsider.registry.get_group(group["id"])
    assert raised.value.status == 404


def test_a_stale_version_is_refused_and_a_fresh_read_succeeds(platform_client, unique):
    client = platform_client("pendamping", region="6472")
    group = client.registry.create_group(name=unique("KUBE Versi"), region_code=VILLAGE)
    read_version = group["version"]
    changed = client.registry.update_group(
        group["id"], version=read_version, address="Jl. Pahlawan 1"
    )
    assert changed["version"] > read_version

    with pytest.raises(PreconditionFailed) as raised:
        client.registry.update_group(group["id"], version=read_version, address="Jl. Lama")
    assert raised.value.body["current_etag"] == f'"{changed["version"]}"'

    # Without a version the client reads the group first and sends its ETag.
    again = client.registry.update_group(group["id"], address="Jl. Baru 2")
    assert again["address"] == "Jl. Baru 2"
    assert again["version"] > changed["version"]


def test_iterating_groups_follows_every_page(platform, token, unique):
    from kube_client import KubeClient

    prefix = unique("KUBE Halaman")
    session = RecordingSession()
    client = KubeClient(**platform, token=token("pendamping", region="6472"), session=session)
    made = {
        client.registry.create_group(name=f"{prefix} {n}", region_code=VILLAGE)["id"]
        for n in range(5)
    }

    found = list(client.registry.iter_groups(q=prefix, page_size=2))

    assert {g["id"] for g in found} == made
    assert len(found) == len(made)
    pages = [p["page"] for m, url, p in session.sent if m == "GET" and url.endswith("/groups")]
    assert pages == [1, 2, 3]


def test_the_token_provider_is_called_for_each_request(platform, token):
    from kube_client import KubeClient

    calls = []

    def provider() -> str:
        calls.append(1)
        return token("auditor", region="64")

    client = KubeClient(**platform, token_provider=provider)
    list(client.grants.iter_programs())
    list(client.notifications.iter_messages(page_size=1))
    assert len(calls) == 2


def test_a_csv_import_is_uploaded_and_waited_for(platform_client, unique):
    client = platform_client("pendamping", region="6472")
    name = unique("KUBE Impor")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=IMPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for person in members():
        writer.writerow(
            {"group_name": name, "village_code": VILLAGE, "business_type": "tempe", **person}
        )

    job = client.registry.import_file(out.getvalue().encode(), filename="kube.csv", timeout=120)

    assert job["status"] == "done", job
    assert (job["groups_created"], job["row_errors"]) == (1, [])
    imported = list(client.registry.iter_groups(q=name))
    assert [g["member_count"] for g in imported] == [5]


def test_the_registry_reports_count_a_new_group_within_the_callers_region(platform_client, unique):
    client = platform_client("verifikator", region="6472")
    village = "6472071001"  # a district no other test of this module writes to
    client.registry.register_group(
        {"name": unique("KUBE Laporan"), "region_code": village, "business_type": "Tempe"},
        members(),
    )

    groups = client.registry.report_groups(level="district", region="647207")
    assert [(r["region_code"], r["groups"], r["members"]) for r in groups["rows"]] == [
        ("647207", 1, 5)
    ]
    assert groups["total"]["by_status"]["active"] == 1
    kinds = client.registry.report_business_types(region="647207")["rows"]
    assert kinds == [{"business_type": "tempe", "groups": 1, "members": 5}]
    assert client.registry.report_visits(region="647207")["total"]["groups"] == 1
    assert client.registry.report_revenue(region="647207")["total"]["groups_with_grant"] == 0
    with pytest.raises(ValidationFailed):
        platform_client("kepala_dinas", region="33").registry.report_groups(region="647207")


def test_the_message_report_agrees_with_the_messages_listed_in_the_region(platform_client):
    from datetime import UTC, datetime

    client = platform_client("kepala_dinas", region="6472")
    until = datetime.now(UTC)

    report = client.notifications.report_messages(level="district", until=until)

    listed = list(client.notifications.iter_messages(until=until.isoformat(), page_size=100))
    assert report["region"] == "6472" and report["until"] is not None
    assert report["total"]["total"] == len(listed)
    assert sum(row["total"] for row in report["rows"]) == len(listed)
    assert all(row["region_code"].startswith("6472") for row in report["rows"])
    reach = client.notifications.report_reach(region="647201", until=until)
    assert reach["region"] == "647201"
    assert set(client.notifications.report_opt_outs()["total"]) >= {"opted_out", "unattributed"}
    with pytest.raises(ValidationFailed) as raised:
        client.notifications.report_messages(region="33")
    assert set(raised.value.errors) == {"region"}
