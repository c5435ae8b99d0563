"""`make run` (kube run) as a newcomer meets it: a child that fails stops everything at once
with its last log lines, its children never outlive it, and a first run shows demo data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import requests

from kube.localinfra import create_database, database_url, drop_database, free_port
from shared.tokens import issue_token

from support import JWT_SECRET, ROOT, RUN_ID, wait_until

pytestmark = pytest.mark.e2e


def _run_env(platform_env: dict, ports: dict[str, int], local_dir) -> dict:
    # Its own .local: a test beside another (or beside `make run`) shares no beat schedule.
    env = {**os.environ, **platform_env, "KUBE_LOCAL_DIR": str(local_dir)}
    for service, port in ports.items():
        env[f"{service.upper()}_PORT"] = str(port)
    return env


def _start(env: dict, *, demo: bool = False, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kube.cli", "run", "--demo" if demo else "--no-demo"],
        cwd=ROOT,
        env=env,
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_child_that_exits_stops_the_platform_at_once_with_its_last_lines(platform_env, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {
            "registry": taken.getsockname()[1],
            "grants": free_port(),
            "notifications": free_port(),
        }
        started = time.monotonic()
        runner = _start(_run_env(platform_env, ports, tmp_path))
        try:
            output, _ = runner.communicate(timeout=60)
        finally:
            runner.kill()
    assert runner.returncode == 1
    assert time.monotonic() - started < 45  # not the 90 s readiness wait
    assert "registry-api exited" in output
    assert "its last lines" in output and "address already in use" in output.lower()


def test_children_die_with_the_runner_even_when_it_is_killed_hard(platform_env, tmp_path):
    ports = {s: free_port() for s in ("registry", "grants", "notifications")}
    runner = _start(_run_env(platform_env, ports, tmp_path))
    try:

        def ready():
            try:
                return all(
                    requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).ok
                    for port in ports.values()
                )
            except requests.RequestException:
                return False

        wait_until(ready, timeout=90, interval=0.5)
        children = psutil.Process(runner.pid).children(recursive=True)
        assert len(children) >= 8  # 3 APIs (with workers), 3 Celery workers, relay, scheduler
        runner.send_signal(signal.SIGKILL)
        runner.wait(10)
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [p.pid for p in alive]
    finally:
        runner.kill()
        runner.wait(10)


def test_a_first_run_seeds_demo_groups_and_grants_at_several_stages(
    platform_env, postgres_server, tmp_path
):
    services = ("registry", "grants", "notifications")
    ports = {s: free_port() for s in services}
    env = _run_env(platform_env, ports, tmp_path)
    # Empty databases and queues of its own: the demo seeds only an empty platform, and no
    # worker of the suite may take its events.
    env["KUBE_QUEUE_PREFIX"] = f"kubetest-{RUN_ID}-demo"
    names = {s: f"kube_test_{RUN_ID}_demo_{s}" for s in services}
    for service, name in names.items():
        create_database(postgres_server, name, exist_ok=False)
        env[f"{service.upper()}_DATABASE_URL"] = database_url(postgres_server, name)
    log = tmp_path / "run.log"
    try:
        with open(log, "w") as output:
            runner = _start(env, demo=True, stdout=output)
        try:
            wait_until(
                lambda: "platform is running" in log.read_text() or runner.poll() is not None,
                timeout=180,
                interval=0.5,
            )
            admin = issue_token(JWT_SECRET, sub="e2e-admin", roles=["admin"], region="*")
            grants = requests.get(
                f"http://127.0.0.1:{ports['grants']}/api/v1/grants?page_size=100",
                headers={"Authorization": f"Bearer {admin}"},
                timeout=10,
            )
        finally:
            runner.send_signal(signal.SIGINT)
            runner.wait(60)
    finally:
        for name in names.values():
            drop_database(postgres_server, name)
    output = log.read_text()
    assert "Seeded 2 grant programmes and 6 applications" in output, output
    assert grants.status_code == 200, output
    stages = {(g["workflow"]["key"], g["stage"]) for g in grants.json()["items"]}
    assert stages == {
        ("regional", "draft"),
        ("regional", "submitted"),
        ("regional", "verified"),
        ("regional", "approved"),
        ("regional", "disbursed"),
        ("national", "recommended"),
    }
    assert runner.returncode == 0, output
