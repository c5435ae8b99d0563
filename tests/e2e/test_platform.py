"""End to end: the platform's real processes (gunicorn APIs, Celery workers, the relay)
talking over HTTP, Redis and PostgreSQL, driven the way a field app drives them."""

from __future__ import annotations

import json
import socket

import pytest
import requests
from sqlalchemy import text

from services.registry.demo import DEMO_GROUPS, ROLES, seed
from shared.auth import issue_token

from support import JWT_SECRET, wait_until

pytestmark = pytest.mark.e2e


def test_demo_groups_flow_from_registry_to_grants_and_notifications(platform, apps):
    token = issue_token(JWT_SECRET, sub="e2e-admin", roles=["admin"], region="*")
    headers = {"Authorization": f"Bearer {token}"}
    seed(platform, token)

    groups = requests.get(
        f"{platform['registry']}/api/v1/groups?page_size=100", headers=headers, timeout=10
    ).json()["items"]
    demo = {g["name"]: g for g in groups if g["name"] in {d["name"] for d in DEMO_GROUPS}}
    assert len(demo) == len(DEMO_GROUPS)

    for spec in DEMO_GROUPS:
        group = demo[spec["name"]]
        status = "active" if spec["activate"] else "draft"

        def projected(group=group, status=status):
            grants = requests.get(
                f"{platform['grants']}/api/v1/groups/{group['id']}", headers=headers, timeout=5
            )
            contacts = requests.get(
                f"{platform['notifications']}/api/v1/recipient-groups/{group['id']}",
                headers=headers,
                timeout=5,
            )
            return (
                grants.ok
                and grants.json()["status"] == status
                and grants.json()["member_count"] == len(ROLES)
                and contacts.ok
                and len(contacts.json()["contacts"]) == len(ROLES)
            )

        wait_until(projected, timeout=30, interval=0.3)

    # The relay process delivered every event: nothing is left pending in the outbox.
    with apps["registry"].extensions["kube"].db.transaction() as session:
        pending = session.execute(
            text("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
        ).scalar()
    assert pending == 0

    scoped = issue_token(JWT_SECRET, sub="e2e-officer", roles=["pendamping"], region="6471")
    other_region = requests.get(
        f"{platform['grants']}/api/v1/groups/{demo['KUBE Tempe Makmur']['id']}",
        headers={"Authorization": f"Bearer {scoped}"},
        timeout=5,
    )
    assert other_region.status_code == 404


def _raw_request(url: str, payload: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes to the server of `url`; return the status, headers and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        try:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before taking it all: read the answer
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def test_a_request_line_too_long_for_gunicorn_is_a_problem(platform):
    status, headers, body = _raw_request(
        platform["registry"],
        b"GET /api/v1/groups?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: kube\r\n\r\n",
    )
    assert status == 414
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 414


def test_a_chunked_body_over_the_limit_is_a_413_problem(platform):
    token = issue_token(JWT_SECRET, sub="e2e-admin", roles=["admin"], region="*")
    chunk = b"x" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40))  # 2.5 MiB
    status, headers, body = _raw_request(
        platform["registry"],
        b"POST /api/v1/groups HTTP/1.1\r\nHost: kube\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n",
    )
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413
