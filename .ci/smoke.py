"""Smoke test of `make run`: every service ready, a group flows to the others, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import requests

from shared.auth import issue_token

SERVICES = {"registry": 5001, "grants": 5002, "notifications": 5003}
DASHBOARD = 5004


def wait(condition, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise SystemExit(f"smoke: timed out waiting for {what}")


def _echo(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        print(line, end="", flush=True)


def main() -> None:
    secret = uuid.uuid4().hex * 2
    env = {
        **os.environ,
        "KUBE_JWT_SECRET": secret,
        "REDIS_URL": "redis://127.0.0.1:6379/12",
        "KUBE_QUEUE_PREFIX": f"smoke-{uuid.uuid4().hex[:6]}",
    }
    platform = subprocess.Popen(
        ["make", "run"],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    threading.Thread(target=_echo, args=(platform.stdout, output), daemon=True).start()
    try:
        # The banner is printed once the demo data is seeded.
        wait(lambda: any("KUBE platform is running" in line for line in output), "make run")
        for service, port in SERVICES.items():
            wait(
                lambda p=port: requests.get(f"http://127.0.0.1:{p}/readyz", timeout=2).ok,
                f"{service} /readyz",
            )
            print(f"smoke: {service} ready")
        headers = {
            "Authorization": f"Bearer {issue_token(secret, sub='ci', roles=['admin'], region='*')}"
        }
        wait(
            lambda: requests.get(
                "http://127.0.0.1:5002/api/v1/groups?status=active", headers=headers, timeout=5
            ).json()["total"],
            "the active demo groups to reach the grant service",
            30,
        )
        print("smoke: demo data seeded and seen by grants")
        # The sign-in links and the walk-through follow the banner, once `make run` has found
        # the demo's submitted application: wait for them, do not look once.
        wait(
            lambda: any(f"127.0.0.1:{DASHBOARD}/masuk?token=" in line for line in output),
            "make run's dashboard sign-in links",
            60,
        )
        overview = requests.get(f"http://127.0.0.1:{DASHBOARD}/", timeout=10, allow_redirects=False)
        if overview.status_code != 302 or "/masuk" not in overview.headers.get("Location", ""):
            raise SystemExit(
                f"smoke: the dashboard did not ask for sign-in ({overview.status_code})"
            )
        print("smoke: dashboard up")
        wait(lambda: any("Walk-through:" in line for line in output), "make run's walk-through", 60)
        # The walk-through as a user takes it: the demo's submitted application to `closed`
        # through the Python client, and the group's messages about it delivered.
        walk = subprocess.run(
            [sys.executable, "-m", "kube.cli", "walkthrough"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        print(walk.stdout + walk.stderr, end="")
        if walk.returncode != 0 or "-> closed" not in walk.stdout:
            raise SystemExit(f"smoke: kube walkthrough failed (exit {walk.returncode})")
        if not any(f" {status} " in walk.stdout for status in ("sent", "delivered")):
            raise SystemExit("smoke: the walk-through's messages were not sent")
        print("smoke: walk-through closed the demo application")
        name = f"KUBE Smoke {uuid.uuid4().hex[:6]}"
        created = requests.post(
            "http://127.0.0.1:5001/api/v1/groups",
            headers=headers,
            timeout=10,
            json={"name": name, "region_code": "6472011001", "business_type": "tempe"},
        )
        created.raise_for_status()
        group_id = created.json()["id"]
        wait(
            lambda: (
                requests.get(
                    f"http://127.0.0.1:5002/api/v1/groups/{group_id}", headers=headers, timeout=2
                ).ok
            ),
            "grants to see the group",
            30,
        )
        wait(
            lambda: (
                requests.get(
                    f"http://127.0.0.1:5003/api/v1/recipient-groups/{group_id}",
                    headers=headers,
                    timeout=2,
                ).ok
            ),
            "notifications to see the group",
            30,
        )
        print(f"smoke: group {group_id} seen by grants and notifications")
    finally:
        os.killpg(platform.pid, signal.SIGINT)
        try:
            code = platform.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(platform.pid, signal.SIGKILL)
            raise SystemExit("smoke: make run did not stop within 60 s") from None
    for port in (*SERVICES.values(), DASHBOARD):
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except requests.ConnectionError:
            continue
        raise SystemExit(f"smoke: port {port} still answers after the stop")
    print(f"smoke: clean stop (make exited {code})")
    sys.exit(0)


if __name__ == "__main__":
    main()
