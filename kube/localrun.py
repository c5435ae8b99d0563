"""`make run`: the whole platform as local processes, with demo data, stopped by Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import requests

from kube.catalogue import NAMES, SERVICES, app_target, worker_target
from kube.localinfra import (
    create_database,
    database_url,
    redis_answers,
    start_embedded_postgres,
    start_private_redis,
)
from shared.auth import issue_token
from shared.config import database_url_for

ROOT = Path(__file__).resolve().parent.parent
# Where the local run keeps its database, Redis, logs, secret and beat schedule.
LOCAL = Path(os.environ.get("KUBE_LOCAL_DIR") or ROOT / ".local")
DASHBOARD_DEFAULT_PORT = 5004


def local_jwt_secret(*, create: bool = True) -> str | None:
    """The secret `make run` keeps in .local so tokens survive a restart (None if absent)."""
    path = LOCAL / "jwt-secret"
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _local_key(name: str, make) -> str:
    path = LOCAL / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def local_data_keys(env: dict[str, str]) -> None:
    """The registry's data and lookup keys: the user's, else the local run's own in .local
    (kept, like the JWT secret, so the local database stays readable after a restart)."""
    from shared.encryption import generate_key

    if not env.get("KUBE_DATA_KEYS") and not env.get("KUBE_DATA_KEYS_FILE"):
        env["KUBE_DATA_KEYS"] = _local_key("data-keys", lambda: f"local1:{generate_key()}")
    if not env.get("KUBE_LOOKUP_KEY") and not env.get("KUBE_LOOKUP_KEY_FILE"):
        env["KUBE_LOOKUP_KEY"] = _local_key("lookup-key", generate_key)


def local_dashboard_secret(env: dict[str, str]) -> None:
    """The dashboard's session secret: the user's, else one kept in .local (sign-ins then
    survive a restart)."""
    if not env.get("DASHBOARD_SECRET_KEY"):
        env["DASHBOARD_SECRET_KEY"] = _local_key("dashboard-secret", secrets.token_hex)


def dashboard_port(env: dict[str, str]) -> int:
    """The dashboard's port in the local run (`DASHBOARD_PORT`, default 5004)."""
    return int(env.get("DASHBOARD_PORT") or DASHBOARD_DEFAULT_PORT)


def jwt_secret() -> str:
    """KUBE_JWT_SECRET, else the local run's own secret."""
    return os.environ.get("KUBE_JWT_SECRET") or local_jwt_secret()


def use_local_databases(env: dict[str, str], *, announce: bool = False) -> None:
    """Point every service without a `<SERVICE>_DATABASE_URL` at its database on the local
    run's embedded PostgreSQL (started, or reused, from .local/postgres)."""
    missing = [
        name
        for name in NAMES
        if not database_url_for(name) and not env.get(f"{name.upper()}_DATABASE_URL")
    ]
    if not missing:
        return
    if announce:
        print("Starting embedded PostgreSQL in .local/postgres ...", flush=True)
    server = start_embedded_postgres(LOCAL / "postgres")
    for name in missing:
        database = f"kube_{name}"
        create_database(server, database)
        env[f"{name.upper()}_DATABASE_URL"] = database_url(server, database)


def _prepare_environment() -> tuple[dict[str, str], list[subprocess.Popen]]:
    env = dict(os.environ)
    infra: list[subprocess.Popen] = []
    use_local_databases(env, announce=True)
    redis_url = env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if not redis_answers(redis_url):
        print(f"Redis at {redis_url} does not answer; starting a private one ...", flush=True)
        process, redis_url = start_private_redis(LOCAL / "redis", persist=True)
        infra.append(process)
    env["REDIS_URL"] = redis_url
    env["KUBE_JWT_SECRET"] = jwt_secret()
    local_data_keys(env)
    local_dashboard_secret(env)
    _local_providers(env)
    for service in SERVICES:
        # Where each API answers, for consumers reading its event feed.
        env.setdefault(f"{service.name.upper()}_URL", f"http://127.0.0.1:{port_of(service, env)}")
    return env, infra


def _local_providers(env: dict[str, str]) -> None:
    """Without provider accounts, SMS go to a file and email to a local SMTP sink, both under
    .local/, so the whole flow is visible; settings the user gave are kept."""
    if not env.get("SMS_PROVIDER") and not env.get("SMS_GATEWAY_URL"):
        env["SMS_PROVIDER"] = "file"
        env.setdefault("SMS_FILE_DIR", str(LOCAL / "sms"))
        # Quiet hours spare real phones at night; a file wakes no one, and the demo's SMS
        # should show at once whatever the time in Kalimantan.
        env.setdefault("KUBE_QUIET_HOURS", "off")
    if not env.get("SMTP_HOST"):
        env["KUBE_MAILSINK_DIR"] = str(LOCAL / "mail")
        env["SMTP_HOST"], env["SMTP_SECURITY"] = "127.0.0.1", "none"
        env["SMTP_PORT"] = env.get("KUBE_MAILSINK_PORT") or "2525"
        env.setdefault("SMTP_SENDER", "kube@localhost")


def port_of(service, env: dict[str, str]) -> int:
    """The port of a service's API in the local run (`<SERVICE>_PORT` or its default)."""
    return int(env.get(f"{service.name.upper()}_PORT") or service.default_port)


def gunicorn_command(target: str, bind: str, *, workers: int = 2) -> list[str]:
    """gunicorn serving `target`, without a control socket (every instance on a machine would
    share ~/.gunicorn/gunicorn.ctl, and one that stops deletes the other's)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--graceful-timeout",
        "5",
        "--no-control-socket",
        "--config",
        "python:kube.gunicorn_config",
        target,
    ]


def worker_command(name: str, *, node: str) -> list[str]:
    """A Celery worker of one service, one task at a time."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        worker_target(name),
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "1",
        "-n",
        node,
    ]


def _processes(env: dict[str, str]) -> list[tuple[str, list[str]]]:
    commands = []
    if env.get("KUBE_MAILSINK_DIR"):
        sink = "services.notifications.providers.mailsink"
        commands.append(
            (
                "mailsink",
                [
                    sys.executable,
                    "-m",
                    sink,
                    "--dir",
                    env["KUBE_MAILSINK_DIR"],
                    "--port",
                    env["SMTP_PORT"],
                ],
            )
        )
    for service in SERVICES:
        bind = f"127.0.0.1:{port_of(service, env)}"
        commands.append((f"{service.name}-api", gunicorn_command(app_target(service.name), bind)))
        commands.append(
            (f"{service.name}-worker", worker_command(service.name, node=f"{service.name}@%h"))
        )
    commands.append(("relay", [sys.executable, "-m", "kube.cli", "relay"]))
    # The province dashboard (apps/dashboard): calls the APIs above through kube-client.
    commands.append(
        (
            "dashboard",
            gunicorn_command("kube_dashboard:create_app()", f"127.0.0.1:{dashboard_port(env)}"),
        )
    )
    commands.append(
        (
            "scheduler",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "kube.scheduler",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(LOCAL / "celerybeat-schedule"),
            ],
        )
    )
    return commands


def _die_with_parent() -> None:
    """In the child: be killed when the runner dies, even by SIGKILL (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    # Ctrl-C reaches the runner only; it stops the children in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ChildExited(RuntimeError):
    """A process of the platform stopped on its own."""


class _Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.tail: deque[str] = deque(maxlen=20)
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_die_with_parent,
        )
        threading.Thread(target=self._pipe_output, daemon=True).start()

    def _pipe_output(self) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log_file:
            for line in self.process.stdout:
                log_file.write(line)
                log_file.flush()
                self.tail.append(line.rstrip("\n"))

    def check(self) -> None:
        """Raise ChildExited, with the child's last log lines, if it has stopped."""
        if self.process.poll() is None:
            return
        time.sleep(0.2)  # let the pipe thread take the last lines
        lines = "\n".join(f"    {line}" for line in self.tail)
        raise ChildExited(
            f"{self.name} exited with {self.process.returncode}; its last lines "
            f"({self.log_path}):\n{lines}"
        )


def _wait_ready(
    urls: dict[str, str], children: list[_Child], timeout: float = 90, path: str = "/readyz"
) -> None:
    deadline = time.monotonic() + timeout
    for service, url in urls.items():
        while True:
            for child in children:
                child.check()
            try:
                if requests.get(f"{url}{path}", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass  # not listening yet, or too busy to answer in time: ask again
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service} did not become ready; see .local/logs/")
            time.sleep(0.3)


def run_platform(seed_demo: bool = True) -> None:
    """Prepare databases and Redis, migrate, start every process, seed, wait for Ctrl-C."""
    env, infra = _prepare_environment()
    from shared.migrate import upgrade

    # Migrations read the keys from this process's environment (the registry's encrypt rows).
    for name in ("KUBE_DATA_KEYS", "KUBE_LOOKUP_KEY"):
        if env.get(name):
            os.environ[name] = env[name]
    for service in SERVICES:
        upgrade(service.migrations, env[f"{service.name.upper()}_DATABASE_URL"])
    log_dir = LOCAL / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    children: list[_Child] = []
    stopping = threading.Event()

    def stop(*_args):
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for name, argv in _processes(env):
            children.append(_Child(name, argv, env, log_dir))
        urls = {s.name: f"http://127.0.0.1:{port_of(s, env)}" for s in SERVICES}
        _wait_ready(urls, children)
        dashboard = f"http://127.0.0.1:{dashboard_port(env)}"
        _wait_ready({"dashboard": dashboard}, children, path="/healthz")
        admin = issue_token(env["KUBE_JWT_SECRET"], sub="local-admin", roles=["admin"], region="*")
        if seed_demo:
            # Seeders that act as several people sign their tokens with it (grants' demo).
            os.environ["KUBE_JWT_SECRET"] = env["KUBE_JWT_SECRET"]
            for service in SERVICES:
                if service.seed_demo:
                    service.seed_demo(urls, admin)
        print("\nKUBE platform is running (logs in .local/logs/, Ctrl-C stops everything):")
        for service, url in urls.items():
            print(f"  {service:<14} {url}   docs {url}/docs   spec {url}/openapi.json")
        print(f"  redis          {env['REDIS_URL']}")
        if env.get("SMS_PROVIDER") == "file":
            print(f"  SMS sent       {env['SMS_FILE_DIR']}/sent.jsonl")
        if env.get("KUBE_MAILSINK_DIR"):
            print(f"  email sent     {env['KUBE_MAILSINK_DIR']}/ (SMTP on port {env['SMTP_PORT']})")
        if seed_demo:
            from kube.walkthrough import announce

            print("\n" + announce(urls, env["KUBE_JWT_SECRET"], LOCAL) + "\n", flush=True)
            print(dashboard_links(dashboard, env["KUBE_JWT_SECRET"]) + "\n", flush=True)
        else:
            print(f"\nAn admin token for every region (8 hours):\n  {admin}\n", flush=True)
        while not stopping.is_set():
            for child in children:
                child.check()
            stopping.wait(1)
    except ChildExited as exc:
        print(f"\n{exc}\nStopping the platform.", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    finally:
        print("Stopping ...", flush=True)
        _stop_all([child.process for child in children])
        _stop_all(infra)
        print("Stopped.", flush=True)


def dashboard_links(dashboard: str, secret: str) -> str:
    """The dashboard's address and a local sign-in link per role (each fills the sign-in
    form with that role's token; the user presses Masuk)."""
    from kube.walkthrough import role_tokens

    lines = [f"Dashboard: {dashboard}/  (sign in with a token; a link per role, 8 hours):"]
    lines += [
        f"  {role:<13} {dashboard}/masuk?token={token}"
        for role, token in role_tokens(secret).items()
    ]
    return "\n".join(lines)


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
