"""`make run`: the whole platform as local processes, with demo data, stopped by Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from shared.auth import issue_token
from shared.config import DEFAULT_PORTS, SERVICES, database_url_for
from shared.localinfra import (
    create_database,
    database_url,
    redis_answers,
    start_embedded_postgres,
    start_private_redis,
)

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"


def _jwt_secret() -> str:
    """KUBE_JWT_SECRET, else a secret kept in .local so tokens survive a restart."""
    if os.environ.get("KUBE_JWT_SECRET"):
        return os.environ["KUBE_JWT_SECRET"]
    path = LOCAL / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _prepare_environment() -> tuple[dict[str, str], list[subprocess.Popen]]:
    env = dict(os.environ)
    infra: list[subprocess.Popen] = []
    missing = [s for s in SERVICES if not database_url_for(s)]
    if missing:
        print("Starting embedded PostgreSQL in .local/postgres ...", flush=True)
        server = start_embedded_postgres(LOCAL / "postgres")
        for service in missing:
            name = f"kube_{service}"
            create_database(server, name)
            env[f"{service.upper()}_DATABASE_URL"] = database_url(server, name)
    redis_url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if not redis_answers(redis_url):
        print(f"Redis at {redis_url} does not answer; starting a private one ...", flush=True)
        process, redis_url = start_private_redis(LOCAL / "redis", persist=True)
        infra.append(process)
    env["REDIS_URL"] = redis_url
    env["KUBE_JWT_SECRET"] = _jwt_secret()
    return env, infra


def _processes(env: dict[str, str]) -> list[tuple[str, list[str]]]:
    python = sys.executable
    commands = []
    for service in SERVICES:
        port = env.get(f"{service.upper()}_PORT") or str(DEFAULT_PORTS[service])
        commands.append(
            (
                f"{service}-api",
                [
                    python,
                    "-m",
                    "gunicorn",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--graceful-timeout",
                    "5",
                    f"services.{service}:create_app()",
                ],
            )
        )
        commands.append(
            (
                f"{service}-worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    f"services.{service}.worker",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "1",
                    "-n",
                    f"{service}@%h",
                ],
            )
        )
    commands.append(("relay", [python, "-m", "shared.cli", "relay"]))
    commands.append(
        (
            "scheduler",
            [
                python,
                "-m",
                "celery",
                "-A",
                "shared.scheduler",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(LOCAL / "celerybeat-schedule"),
            ],
        )
    )
    return commands


def _pipe_output(name: str, process: subprocess.Popen, log_dir: Path) -> None:
    with open(log_dir / f"{name}.log", "a", encoding="utf-8") as log_file:
        for line in process.stdout:
            log_file.write(line)
            log_file.flush()


def _wait_ready(urls: dict[str, str], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    for service, url in urls.items():
        while True:
            try:
                if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service} did not become ready; see .local/logs/")
            time.sleep(0.3)


def run_platform(seed_demo: bool = True) -> None:
    """Prepare databases and Redis, migrate, start every process, seed, wait for Ctrl-C."""
    env, infra = _prepare_environment()
    from shared.migrate import upgrade

    for service in SERVICES:
        upgrade(service, env[f"{service.upper()}_DATABASE_URL"])
    log_dir = LOCAL / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    running: list[tuple[str, subprocess.Popen]] = []
    stopping = threading.Event()

    def stop(*_args):
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for name, argv in _processes(env):
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            running.append((name, process))
            threading.Thread(
                target=_pipe_output, args=(name, process, log_dir), daemon=True
            ).start()
        urls = {
            s: f"http://127.0.0.1:{env.get(f'{s.upper()}_PORT') or DEFAULT_PORTS[s]}"
            for s in SERVICES
        }
        _wait_ready(urls)
        admin = issue_token(env["KUBE_JWT_SECRET"], sub="local-admin", roles=["admin"])
        if seed_demo:
            from shared.demo import seed

            seed(urls["registry"], admin)
        print("\nKUBE platform is running (logs in .local/logs/, Ctrl-C stops everything):")
        for service, url in urls.items():
            print(f"  {service:<14} {url}   docs {url}/docs   spec {url}/openapi.json")
        print(f"  redis          {env['REDIS_URL']}")
        print(f"\nAn admin token for every region (8 hours):\n  {admin}\n", flush=True)
        while not stopping.is_set():
            for name, process in running:
                if process.poll() is not None:
                    print(f"{name} exited with {process.returncode}; stopping.", flush=True)
                    stopping.set()
            stopping.wait(1)
    finally:
        print("Stopping ...", flush=True)
        _stop_all([process for _name, process in running])
        _stop_all(infra)
        print("Stopped.", flush=True)


def _stop_all(processes: list[subprocess.Popen], timeout: float = 15) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
