"""The dead-letter API is region-scoped like every other read."""

from __future__ import annotations

import uuid

import pytest

from shared.events.consumer import region_of


def _envelope(region_code: str | None) -> dict:
    payload = {"group": {"region_code": region_code}} if region_code else {}
    return {"id": str(uuid.uuid4()), "type": "group.updated", "payload": payload}


@pytest.fixture
def letters(apps) -> dict:
    """Three dead letters in grants: about Samarinda, about Balikpapan, about no region."""
    consumer = apps["grants"].extensions["kube"].consumer
    made = {}
    for name, region in (("samarinda", "6472011001"), ("balikpapan", "6471021003"), ("none", None)):
        envelope = _envelope(region)
        consumer.dead_letter(envelope, RuntimeError("boom"), attempts=3)
        made[name] = envelope["id"]
    return made


def _listed(clients, headers) -> set[str]:
    body = clients["grants"].get("/api/v1/dead-letters?status=all&page_size=100", headers=headers)
    assert body.status_code == 200
    return {item["event_id"] for item in body.json["items"]}


def test_a_regional_auditor_lists_only_dead_letters_about_their_region(clients, auth, letters):
    listed = _listed(clients, auth("auditor", region="6472"))
    assert letters["samarinda"] in listed
    assert letters["balikpapan"] not in listed and letters["none"] not in listed
    assert letters["samarinda"] in _listed(clients, auth("auditor", region="64"))
    assert set(letters.values()) <= _listed(clients, auth("admin"))


def test_another_regions_dead_letter_is_404_to_read_and_to_replay(clients, auth, letters):
    everywhere = (
        clients["grants"]
        .get("/api/v1/dead-letters?status=all&page_size=100", headers=auth("admin"))
        .json["items"]
    )
    (balikpapan,) = [i for i in everywhere if i["event_id"] == letters["balikpapan"]]
    assert balikpapan["region_code"] == "6471021003"
    url = f"/api/v1/dead-letters/{balikpapan['id']}"
    assert clients["grants"].get(url, headers=auth("auditor", region="6472")).status_code == 404
    replay = clients["grants"].post(f"{url}/replay", headers=auth("admin", region="6472"))
    assert replay.status_code == 404


def test_the_region_of_an_event_is_read_from_its_group_or_payload():
    assert region_of(_envelope("6472011001")) == "6472011001"
    assert region_of({"payload": {"region_code": "3374"}}) == "3374"
    assert region_of({"payload": {"group": {"region_code": "64; DROP"}}}) is None
    assert region_of({"payload": "not an object"}) is None
