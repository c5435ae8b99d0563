"""End to end: the platform's real processes (gunicorn APIs, Celery workers, the relay)
talking over HTTP, Redis and PostgreSQL, driven the way a field app drives them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest
import requests
from sqlalchemy import text

from shared.auth import issue_token
from shared.demo import DEMO_GROUPS, ROLES, seed
from shared.localinfra import free_port

from support import JWT_SECRET, ROOT, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def platform(platform_env, workers, tmp_path_factory):
    """Three APIs under gunicorn and the relay process, on this run's databases and queues."""
    logs = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, **platform_env}
    commands = {"relay": [sys.executable, "-m", "shared.cli", "relay"]}
    urls = {}
    for service in ("registry", "grants", "notifications"):
        port = free_port()
        urls[service] = f"http://127.0.0.1:{port}"
        commands[service] = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            f"services.{service}:create_app()",
        ]
    with contextlib.ExitStack() as stack:
        processes = []
        for name, argv in commands.items():
            log = stack.enter_context(open(logs / f"{name}.log", "w"))
            processes.append(
                subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            )
        try:
            for url in urls.values():
                wait_until(lambda u=url: _ready(u), timeout=60, interval=0.3)
            yield urls
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(20)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:  # refused, or accepted while the worker still boots
        return False


def test_demo_groups_flow_from_registry_to_grants_and_notifications(platform, apps):
    token = issue_token(JWT_SECRET, sub="e2e-admin", roles=["admin"])
    headers = {"Authorization": f"Bearer {token}"}
    seed(platform["registry"], token)

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
