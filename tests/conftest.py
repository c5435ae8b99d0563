"""Real PostgreSQL, real Redis and real Celery workers for the whole suite.

TEST_DATABASE_URL names a PostgreSQL server (any database on it) and TEST_REDIS_URL a Redis
database; without them an embedded PostgreSQL and a private Redis are started for the run.
Each run creates its own databases (dropped at the end), uses its own queue names and key
prefix, so it passes beside a running platform.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
import requests

from kube.catalogue import BY_NAME, NAMES, SUBSCRIPTIONS, app_target, worker_target
from kube.localinfra import (
    create_database,
    database_url,
    drop_database,
    free_port,
    start_embedded_postgres,
    start_private_redis,
)
from kube.localrun import gunicorn_command
from shared.auth import issue_token

from support import (  # noqa: F401 - re-exported
    DATA_KEY,
    JWT_SECRET,
    LOOKUP_KEY,
    PROVIDER_SECRET,
    ROOT,
    RUN_ID,
    SHARED_DATA,
    Gateway,
    MailServer,
    wait_until,
)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    return url or start_embedded_postgres(ROOT / ".local" / "test-postgres")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    process, url = start_private_redis(tmp_path_factory.mktemp("redis"), persist=False)
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def sms_gateway():
    """The SMS gateway every worker and app of this run sends to (a real local HTTP server)."""
    gateway = Gateway()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def mail_server():
    """The SMTP server every worker and app of this run sends email to (aiosmtpd)."""
    server = MailServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def platform_env(postgres_server, redis_url, sms_gateway, mail_server):
    """Environment of this run's platform: its databases, Redis, queues, secret and
    providers."""
    env = {
        "SMS_PROVIDER": "http",
        "SMS_GATEWAY_URL": sms_gateway.url,
        "SMS_GATEWAY_USERKEY": "uji-user",
        "SMS_GATEWAY_PASSKEY": "uji-pass",
        "SMS_GATEWAY_TIMEOUT": "2",
        "SMS_RATE_PER_SECOND": "0",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail_server.port),
        "SMTP_SECURITY": "none",
        "SMTP_SENDER": "kube@dinsos.example.id",
        "KUBE_PROVIDER_CALLBACK_SECRET": PROVIDER_SECRET,
        # Quiet hours are a production default; tests that need them turn them on.
        "KUBE_QUIET_HOURS": "off",
        "REDIS_URL": redis_url,
        "KUBE_QUEUE_PREFIX": f"kubetest-{RUN_ID}",
        "KUBE_JWT_SECRET": JWT_SECRET,
        # The registry encrypts NIK and No. KK (and refuses to start without keys).
        "KUBE_DATA_KEYS": DATA_KEY,
        "KUBE_LOOKUP_KEY": LOOKUP_KEY,
        # Short retries so failure paths finish in seconds.
        "KUBE_TASK_MAX_RETRIES": "2",
        "KUBE_RETRY_BACKOFF_SECONDS": "0.2",
        "KUBE_RETRY_BACKOFF_MAX_SECONDS": "1",
        "KUBE_RELAY_POLL_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }
    from shared.migrate import upgrade

    names = {service: f"kube_test_{RUN_ID}_{service}" for service in NAMES}
    for service, name in names.items():
        create_database(postgres_server, name, exist_ok=False)
        env[f"{service.upper()}_DATABASE_URL"] = database_url(postgres_server, name)
        upgrade(BY_NAME[service].migrations, env[f"{service.upper()}_DATABASE_URL"])
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for name in names.values():
        drop_database(postgres_server, name)
    # The run's keys (relay wake-ups, kombu's queue bindings, revocations): a shared Redis
    # database is left as the run found it.
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*kubetest-{RUN_ID}*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def apps(platform_env):
    """The three services' Flask apps, built in this process against this run's databases."""
    import importlib

    built = {s: importlib.import_module(f"services.{s}").create_app() for s in NAMES}
    yield built
    for app in built.values():
        app.extensions["kube"].db.dispose()


# Fixtures that need the real servers; a test using none of them is a unit test.
_SERVER_FIXTURES = {
    "postgres_server",
    "redis_url",
    "platform_env",
    "apps",
    "clients",
    "workers",
    "sms_gateway",
    "mail_server",
}
# Fixtures whose work other processes (workers, the relay) must see: their tests commit.
_COMMITTING_FIXTURES = {"workers", "relay", "platform"}


def pytest_collection_modifyitems(items):
    """Mark each test unit, integration or e2e by what it uses (`make test-unit` etc.)."""
    for item in items:
        if item.get_closest_marker("e2e"):
            continue
        uses = set(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.integration if uses & _SERVER_FIXTURES else pytest.mark.unit)


@pytest.fixture(autouse=True)
def _rolled_back(request):
    """Each integration test runs in one transaction per service database, rolled back at its
    end, so it sees exactly the data it made. Tests that real workers, the relay or other
    threads must see commit for real (and mark `commits` where no fixture says so)."""
    uses = set(request.fixturenames)
    if (
        "apps" not in uses
        or uses & _COMMITTING_FIXTURES
        or request.node.get_closest_marker("commits")
    ):
        yield
        return
    apps = request.getfixturevalue("apps")
    with contextlib.ExitStack() as stack:
        for app in apps.values():
            stack.enter_context(app.extensions["kube"].db.rolled_back())
        yield


@pytest.fixture(scope="session")
def clients(apps):
    return {service: app.test_client() for service, app in apps.items()}


@pytest.fixture(scope="session")
def token() -> Callable[..., str]:
    def make(*roles: str, region: str | None = None, sub: str = "tester", **kwargs) -> str:
        roles = list(roles or ("admin",))
        if region is None:
            # Nationwide is for admin and service tokens only; other roles default to the
            # province of the suite's data (Kalimantan Timur).
            region = "*" if {"admin", "service"} & set(roles) else "64"
        return issue_token(JWT_SECRET, sub=sub, roles=roles, region=region, **kwargs)

    return make


@pytest.fixture(scope="session")
def auth(token) -> Callable[..., dict]:
    """Headers with a bearer token for the given roles and region."""

    def make(*roles: str, region: str | None = None, **kwargs) -> dict:
        return {"Authorization": f"Bearer {token(*roles, region=region, **kwargs)}"}

    return make


class WorkerProcess:
    def __init__(self, service: str, env: dict, log_dir: Path):
        self.service = service
        self.log_path = log_dir / f"{service}-worker.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                worker_target(service),
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{service}-{RUN_ID}@%h",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.service} worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def pool_pids(self) -> list[int]:
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log_file.close()


@pytest.fixture(scope="session")
def workers(platform_env, tmp_path_factory):
    """One real Celery worker per service, consuming this run's queues."""
    log_dir = tmp_path_factory.mktemp("workers")
    started = {service: WorkerProcess(service, platform_env, log_dir) for service in NAMES}
    try:
        for worker in started.values():
            worker.wait_ready()
        yield started
    finally:
        for worker in started.values():
            worker.stop()


@pytest.fixture(scope="session")
def relay(apps):
    """Run the outbox relay of every service once, in this process."""
    from shared.events.outbox import CeleryPublisher, Relay

    relays = []
    for service, app in apps.items():
        context = app.extensions["kube"]
        publisher = CeleryPublisher(context.celery, context.settings.queue_prefix)
        relays.append(Relay(service, context.db, context.tables.outbox, publisher, SUBSCRIPTIONS))

    def run_once() -> int:
        return sum(r.run_once() for r in relays)

    return run_once


@pytest.fixture(scope="module")
def platform(platform_env, workers, tmp_path_factory):
    """Three APIs under gunicorn and the relay process, on this run's databases and queues;
    answers each service's base URL. Module-scoped: the tests of one module share them."""
    logs = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, **platform_env}
    commands = {"relay": [sys.executable, "-m", "kube.cli", "relay"]}
    urls = {}
    for service in ("registry", "grants", "notifications"):
        port = free_port()
        urls[service] = f"http://127.0.0.1:{port}"
        commands[service] = gunicorn_command(app_target(service), f"127.0.0.1:{port}", workers=1)
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
    except requests.RequestException:
        # Not listening yet, or too busy on a loaded machine to answer in time: ask again.
        return False


@pytest.fixture
def platform_client(platform, token):
    """A kube-client KubeClient on the running platform, with a token for the given roles and
    region (as `token` makes them)."""
    from kube_client import KubeClient

    made = []

    def make(*roles: str, region: str | None = None, **kwargs) -> KubeClient:
        client = KubeClient(**platform, token=token(*roles, region=region), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """A name no other test uses, for data that must not collide."""
    return lambda prefix="KUBE": f"{prefix} {uuid.uuid4().hex[:10]}"
