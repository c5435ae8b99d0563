"""`make run` (kube run) as a newcomer meets it: a child that fails stops everything at once
with its last log lines, and its children never outlive it."""

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

from kube.localinfra import free_port

from support import ROOT, wait_until

pytestmark = pytest.mark.e2e


def _run_env(platform_env: dict, ports: dict[str, int], local_dir) -> dict:
    # Its own .local: a test beside another (or beside `make run`) shares no beat schedule.
    env = {**os.environ, **platform_env, "KUBE_LOCAL_DIR": str(local_dir)}
    for service, port in ports.items():
        env[f"{service.upper()}_PORT"] = str(port)
    return env


def _start(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kube.cli", "run", "--no-demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
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
