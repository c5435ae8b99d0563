"""Idempotency-Key: a retried POST answers the first response and acts once."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest
from sqlalchemy import text

from shared.idempotency import fingerprint_keys


def groups_named(apps, name: str) -> int:
    with apps["registry"].extensions["kube"].db.transaction() as session:
        return session.execute(
            text("SELECT count(*) FROM groups WHERE name = :n"), {"n": name}
        ).scalar()


def post_group(clients, headers, name, key):
    return clients["registry"].post(
        "/api/v1/groups",
        json={"name": name, "region_code": "6472011001"},
        headers={**headers, "Idempotency-Key": key},
    )


def test_a_retried_post_with_the_same_key_acts_once(clients, auth, apps, unique):
    headers, name, key = auth("pendamping", region="6472"), unique(), str(uuid.uuid4())
    first = post_group(clients, headers, name, key)
    again = post_group(clients, headers, name, key)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert groups_named(apps, name) == 1


def test_the_same_key_for_a_different_request_is_422(clients, auth, unique):
    headers, key = auth("pendamping", region="6472"), str(uuid.uuid4())
    assert post_group(clients, headers, unique(), key).status_code == 201
    other = post_group(clients, headers, unique(), key)
    assert other.status_code == 422
    assert other.json["errors"][0]["field"] == "Idempotency-Key"


def test_keys_belong_to_their_caller(clients, auth, apps, unique):
    key, name = str(uuid.uuid4()), unique()
    assert (
        post_group(clients, auth("pendamping", region="6472", sub="a"), name, key).status_code
        == 201
    )
    assert (
        post_group(clients, auth("pendamping", region="6472", sub="b"), name, key).status_code
        == 201
    )
    assert groups_named(apps, name) == 2


def test_a_rejected_request_does_not_use_up_its_key(clients, auth, apps, unique):
    headers, key, name = auth("pendamping", region="6472"), str(uuid.uuid4()), unique()
    bad = clients["registry"].post(
        "/api/v1/groups", json={"name": name}, headers={**headers, "Idempotency-Key": key}
    )
    assert bad.status_code == 422
    assert post_group(clients, headers, name, key).status_code == 201
    assert groups_named(apps, name) == 1


def test_a_malformed_key_is_400(clients, auth, unique):
    response = post_group(clients, auth("admin"), unique(), "x" * 201)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


@pytest.mark.commits  # two threads, two connections: the race is between real commits
def test_two_simultaneous_requests_with_one_key_act_once(apps, auth, unique):
    import threading

    headers, key, name = auth("pendamping", region="6472"), str(uuid.uuid4()), unique()
    barrier, statuses = threading.Barrier(2), []

    def send():
        client = apps["registry"].test_client()
        barrier.wait()
        statuses.append(post_group({"registry": client}, headers, name, key).status_code)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) in ([201, 201], [201, 409])
    assert groups_named(apps, name) == 1


def test_a_key_replays_only_to_a_caller_with_the_same_rights(clients, auth, apps, unique):
    name, key = unique(), str(uuid.uuid4())
    first = post_group(clients, auth("pendamping", region="6472", sub="same"), name, key)
    assert first.status_code == 201
    # The same user and key, but a token for another region: no replay of the first answer.
    other = post_group(clients, auth("pendamping", region="6471", sub="same"), name, key)
    assert other.status_code == 422
    assert "Idempotency-Key" in {e["field"] for e in other.json["errors"]}
    assert groups_named(apps, name) == 1


def stored_fingerprint(apps, key: str) -> str:
    with apps["registry"].extensions["kube"].db.transaction() as session:
        return session.execute(
            text("SELECT fingerprint FROM idempotency_keys WHERE key = :k"), {"k": key}
        ).scalar_one()


def test_a_fingerprint_is_keyed_so_a_stolen_table_cannot_be_matched_by_trying_niks(
    clients, auth, apps
):
    # A search's body is nothing but the NIK: an unkeyed hash of the request would let
    # anyone holding the table find the NIK by hashing candidates.
    key, nik = str(uuid.uuid4()), "6472015507900003"
    headers = {**auth("verifikator", region="6472", sub="searcher"), "Idempotency-Key": key}
    body = json.dumps({"nik": nik}).encode()
    sent = clients["registry"].post(
        "/api/v1/members/search", data=body, content_type="application/json", headers=headers
    )
    assert sent.status_code == 200
    parts = [b"POST", b"/api/v1/members/search?", b"verifikator@6472", body]
    message = b"".join(part + b"\0" for part in parts)
    stored = stored_fingerprint(apps, key)
    assert stored != hashlib.sha256(message).hexdigest()
    signing_key = apps["registry"].extensions["kube"].settings.event_signing_keys[0]
    assert stored == hmac.new(fingerprint_keys((signing_key,))[0], message, "sha256").hexdigest()


@pytest.mark.commits  # a second app, on its own connections, reads the first one's key
def test_a_key_still_replays_after_the_signing_keys_are_rotated(apps, auth, unique):
    from services.registry import create_app
    from shared.config import load_settings

    headers, name, key = auth("pendamping", region="6472"), unique(), str(uuid.uuid4())
    first = post_group({"registry": apps["registry"].test_client()}, headers, name, key)
    assert first.status_code == 201
    old = apps["registry"].extensions["kube"].settings.event_signing_keys
    rotated = create_app(load_settings("registry", event_signing_keys=("a-newer-key", *old)))
    try:
        again = post_group({"registry": rotated.test_client()}, headers, name, key)
    finally:
        rotated.extensions["kube"].db.dispose()
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert groups_named(apps, name) == 1
