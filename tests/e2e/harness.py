"""The platform as real processes, for the end-to-end and fault tests: the three APIs under
gunicorn, a Celery worker per service, the relay and the scheduler, on their own databases
and their own Redis (persistent, so it can be stopped and started again on the same port),
sending SMS to the suite's HTTP gateway (and a second one for failover) and email to its
SMTP server, with the settings as shipped except the few in SHORTENED.

The tests drive it only through the Python client (`Platform.client`); they read the
databases directly only to count what was sent (outboxes) against what was received
(inboxes), never to act."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import psutil
import psycopg
import requests

from kube.catalogue import BY_NAME, NAMES, app_target
from kube.localinfra import (
    create_database,
    database_url,
    drop_database,
    free_port,
    start_private_redis,
)
from kube.localrun import gunicorn_command, worker_command
from kube_client import KubeClient
from shared.migrate import upgrade
from shared.tokens import issue_token

from support import DATA_KEY, JWT_SECRET, LOOKUP_KEY, PROVIDER_SECRET, ROOT, Gateway, wait_until

# The test suite's own shortcuts (tests/conftest.py); these processes run without them.
SUITE_OVERRIDES = (
    "KUBE_TASK_MAX_RETRIES",
    "KUBE_RETRY_BACKOFF_SECONDS",
    "KUBE_RETRY_BACKOFF_MAX_SECONDS",
    "KUBE_RELAY_POLL_SECONDS",
    "KUBE_CATCH_UP_GRACE_SECONDS",
    "KUBE_CATCH_UP_EVERY_SECONDS",
    "KUBE_QUIET_HOURS",
    "SMS_RATE_PER_SECOND",
)
# The only settings changed from the shipped defaults, and why.
SHORTENED = {
    # The local gateway has no limit; at the default 5 a second, a burst's thousand SMS
    # would take over three minutes of the test's time.
    "SMS_RATE_PER_SECOND": "0",
    # On by default: a run after 21:00 WITA would hold every SMS until 07:00.
    "KUBE_QUIET_HOURS": "off",
}
# The longest an event may take with the defaults: the catch-up's grace (30 s) and tick
# (10 s) after a worker is back, plus room for a loaded 2-core machine.
SETTLE_SECONDS = 150
# What each SMS template of services/notifications/defaults.py says, to tell them apart.
SMS_MARKERS = {
    "grant.submitted": "sudah diajukan",
    "grant.returned": "dikembalikan untuk diperbaiki",
    "grant.approved": "DISETUJUI",
    "grant.disbursed": "sudah ditransfer",
    "grant.report_due": "(LPJ)",
    "grant.report_accepted": "sudah diterima",
}
# Who takes each workflow action (a person per role, so separation of duties holds).
TAKERS = {
    "submit": ("pendamping", "e2e-pendamping"),
    "cancel": ("pendamping", "e2e-pendamping"),
    "verify": ("verifikator", "e2e-verifikator"),
    "return": ("verifikator", "e2e-verifikator"),
    "recommend": ("kepala_dinas", "e2e-kepala-provinsi"),
    "approve": ("kepala_dinas", "e2e-kepala-dinas"),
    "disburse": ("bendahara", "e2e-bendahara"),
    "report": ("pendamping", "e2e-pendamping"),
    "accept_report": ("verifikator", "e2e-verifikator"),
    "monitor": ("pendamping", "e2e-pendamping"),
    "close": ("kepala_dinas", "e2e-kepala-dinas"),
}


class Process:
    """One platform process, restartable, logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self.started_at_byte = 0
        self.start()

    def start(self, env: dict | None = None) -> None:
        if env is not None:
            self.env = env
        self.started_at_byte = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self, since_start: bool = False) -> str:
        with open(self.log_path, errors="replace") as log:
            if since_start:
                log.seek(self.started_at_byte)
            return log.read()

    def wait_ready(self, timeout: float = 90) -> None:
        """A Celery worker's " ready." line, written since this start."""
        wait_until(lambda: " ready." in self.log(since_start=True), timeout=timeout, interval=0.3)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def kill_all(self) -> None:
        """SIGKILL the process and its pool at once, as on a lost machine."""
        pool = self.children()
        self.kill()
        for child in pool:
            with contextlib.suppress(psutil.Error):
                child.kill()

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


class Platform:
    """The platform under test, the means to hurt it and to count what it did."""

    def __init__(self, env, urls, databases, redis, log_dir, sms=None, failover=None, mail=None):
        self.env, self.urls, self.databases, self.redis, self.log_dir = (
            env,
            urls,
            databases,
            redis,
            log_dir,
        )
        self.sms, self.failover, self.mail = sms, failover, mail
        self.processes: dict[str, Process] = {}
        self.statuses: list[int] = []  # every answer a raw-HTTP caller got

    # Talking to it

    def client(
        self, role: str = "admin", region: str | None = None, sub: str | None = None, **kwargs
    ) -> KubeClient:
        """The Python client with a token of one person in one role (the province's, or
        nationwide for admin)."""
        region = region or ("*" if role in ("admin", "service") else "64")
        token = issue_token(JWT_SECRET, sub=sub or f"e2e-{role}", roles=[role], region=region)
        return KubeClient(**self.urls, token=token, **kwargs)

    def connect(self, service: str) -> psycopg.Connection:
        return psycopg.connect(self.databases[service], autocommit=True)

    def send_task(self, service: str, task: str) -> None:
        """Send one periodic task to a service's queue now, as the scheduler does on its tick."""
        from celery import Celery

        from shared.config import queue_name
        from shared.tasks import configure_celery

        app = configure_celery(Celery("e2e-tick"), self.env["REDIS_URL"])
        try:
            app.send_task(task, queue=queue_name(self.env["KUBE_QUEUE_PREFIX"], service))
        finally:
            app.close()

    # Hurting it

    def stop_redis(self, seconds: float) -> None:
        self.redis["process"].terminate()
        self.redis["process"].wait(20)
        time.sleep(seconds)
        process, _ = start_private_redis(self.redis["dir"], persist=True, port=self.redis["port"])
        self.redis["process"] = process

    def terminate_backends(self, services: Iterable[str] | None = None, where: str = "") -> int:
        """pg_terminate_backend for the services' connections (all of them, or those
        matching the extra SQL condition `where`); returns how many."""
        names = [self.databases[s].rsplit("/", 1)[1] for s in (services or self.databases)]
        with self.connect("registry") as conn:
            return len(
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = ANY(%s) AND pid <> pg_backend_pid() {where}",
                    (names,),
                ).fetchall()
            )

    def restart(self, name: str, env: dict | None = None, pause: float = 0) -> None:
        """Kill a process with its pool (SIGKILL), wait `pause` seconds, start it again."""
        process = self.processes[name]
        process.kill_all()
        time.sleep(pause)
        process.start(env)
        if name.endswith("-worker"):
            process.wait_ready()

    def use_failover(self, on: bool) -> None:
        """Restart the notification worker with (or without) the second SMS gateway."""
        env = dict(self.env)
        if on:
            env.update(
                {
                    "SMS_FAILOVER_URL": self.failover.url,
                    "SMS_FAILOVER_USERKEY": "uji-failover-user",
                    "SMS_FAILOVER_PASSKEY": "uji-failover-pass",
                    "SMS_FAILOVER_TIMEOUT": "2",
                }
            )
        worker = self.processes["notifications-worker"]
        worker.stop()
        worker.start(env)
        worker.wait_ready()

    # Counting

    def grant_events(self, grant_ids: list[str], types: tuple[str, ...] | None = None) -> dict:
        """The events grants' outbox holds about these applications: id -> (type, stage)."""
        with self.connect("grants") as conn:
            rows = conn.execute(
                "SELECT id, envelope->>'type', envelope->'payload'->>'to' FROM outbox_events "
                "WHERE envelope->'payload'->'grant'->>'grant_id' = ANY(%s)",
                ([str(g) for g in grant_ids],),
            ).fetchall()
        return {str(i): (t, stage) for i, t, stage in rows if types is None or t in types}

    def inbox(self, consumer: str, event_ids: Iterable[str]) -> tuple[set, set]:
        """Which of these events a consumer applied, and which it dead-lettered."""
        ids = list(event_ids)
        with self.connect(consumer) as conn:
            applied = {
                str(r[0])
                for r in conn.execute(
                    "SELECT event_id FROM processed_events WHERE event_id = ANY(%s::uuid[])", (ids,)
                )
            }
            dead = {
                str(r[0])
                for r in conn.execute(
                    "SELECT event_id FROM dead_letters WHERE event_id = ANY(%s::uuid[])", (ids,)
                )
            }
        return applied, dead

    def message_statuses(self, grant_ids: list[str]) -> Counter:
        """The notification rows of these applications by status."""
        with self.connect("notifications") as conn:
            return Counter(
                dict(
                    conn.execute(
                        "SELECT status, count(*) FROM messages WHERE grant_id = ANY(%s::uuid[]) "
                        "GROUP BY status",
                        ([str(g) for g in grant_ids],),
                    ).fetchall()
                )
            )


# The grant events the notification service consumes (grant.created and decree.issued are
# served on grants' feed only).
NOTIFIED = ("grant.stage_changed", "grant.disbursed", "grant.report_due", "grant.deadline_passed")


def event_tally(
    platform: Platform, grant_ids: list[str], consumer: str = "notifications", wait: bool = True
) -> dict:
    """Grants' outbox against a consumer's inbox for these applications (waiting, bounded,
    until none is lost): sent, applied, dead-lettered, duplicates, lost."""
    if wait:
        with contextlib.suppress(AssertionError):  # the tally says what is missing
            wait_until(
                lambda: event_tally(platform, grant_ids, consumer, wait=False)["lost"] == 0,
                timeout=SETTLE_SECONDS,
                interval=0.5,
            )
    sent = platform.grant_events(grant_ids, NOTIFIED)
    applied, dead = platform.inbox(consumer, sent)
    return {
        "sent": len(sent),
        "applied": len(applied),
        "dead_lettered": len(dead),
        # The inbox's primary key makes a second application impossible; an event both
        # applied and dead-lettered would be the one way to act twice.
        "duplicates": len(applied & dead),
        "lost": len(set(sent) - applied - dead),
    }


def sms_key(form: dict) -> tuple[str, str, str] | None:
    """(number, group name, template) of an SMS the gateway received, if it is a grant's."""
    text = form.get("message", "")
    group, _, rest = text.partition(":")
    kind = next((k for k, marker in SMS_MARKERS.items() if marker in rest), None)
    return (form.get("to"), group, kind) if kind else None


def sms_tally(received: list[dict], expected: Counter) -> dict:
    """Gateway receipts against the expected SMS (a Counter of (number, group, template)):
    sent (expected), delivered, duplicates (arrived more often than expected), lost
    (expected, never arrived) and unexpected (arrived about these groups, never expected)."""
    groups = {group for _, group, _ in expected}
    got = Counter(k for k in map(sms_key, received) if k and k[1] in groups)
    return {
        "sent": sum(expected.values()),
        "delivered": sum(min(got[k], n) for k, n in expected.items()),
        "duplicates": sum(max(0, got[k] - n) for k, n in expected.items()),
        "lost": sum(max(0, n - got[k]) for k, n in expected.items()),
        "unexpected": sum(n for k, n in got.items() if k not in expected),
    }


def national(phone: str) -> str:
    """A phone as the gateway's `userkey` preset sends it: 08..."""
    digits = re.sub(r"\D", "", phone)
    return "0" + digits[2:] if digits.startswith("62") else digits


def report(what: str, **figures) -> None:
    """The line each test prints at its end: what it counted."""
    print(f"\n{what}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).ok
    except requests.RequestException:
        return False


@contextlib.contextmanager
def running_platform(
    postgres_server: str,
    log_dir: Path,
    run: str,
    *,
    sms: Gateway | None = None,
    mail=None,
    api_workers: dict[str, int] | None = None,
) -> Iterator[Platform]:
    """Start the whole platform on new databases and a private Redis; stop it and drop the
    databases at the end. `sms` and `mail` are the suite's gateway and SMTP server."""
    redis_dir = log_dir / "redis"
    redis_process, redis_url = start_private_redis(redis_dir, persist=True)
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    failover = Gateway()
    databases = {}
    platform = None
    try:
        for service in NAMES:
            name = f"kube_test_{run}_{service}"
            create_database(postgres_server, name, exist_ok=False)
            databases[service] = database_url(postgres_server, name)
            upgrade(BY_NAME[service].migrations, databases[service])
        ports = {service: free_port() for service in NAMES}
        urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in SUITE_OVERRIDES
            and not key.endswith("_DATABASE_URL")
            and not key.startswith(("SMS_", "SMTP_"))
        }
        env.update(
            {
                "REDIS_URL": redis_url,
                "KUBE_QUEUE_PREFIX": f"kubee2e-{run}",
                "KUBE_JWT_SECRET": JWT_SECRET,
                "KUBE_DATA_KEYS": DATA_KEY,
                "KUBE_LOOKUP_KEY": LOOKUP_KEY,
                "KUBE_PROVIDER_CALLBACK_SECRET": PROVIDER_SECRET,
                "LOG_LEVEL": "INFO",
                **SHORTENED,
                **{f"{s.upper()}_URL": url for s, url in urls.items()},
                **{f"{s.upper()}_DATABASE_URL": url for s, url in databases.items()},
            }
        )
        if sms is not None:
            env.update(
                {
                    "SMS_PROVIDER": "http",
                    "SMS_GATEWAY_URL": sms.url,
                    "SMS_GATEWAY_USERKEY": "uji-user",
                    "SMS_GATEWAY_PASSKEY": "uji-pass",
                    "SMS_GATEWAY_TIMEOUT": "2",
                }
            )
        else:
            env.update({"SMS_PROVIDER": "file", "SMS_FILE_DIR": str(log_dir / "sms")})
        if mail is not None:
            env.update(
                {
                    "SMTP_HOST": "127.0.0.1",
                    "SMTP_PORT": str(mail.port),
                    "SMTP_SECURITY": "none",
                    "SMTP_SENDER": "kube@dinsos.example.id",
                }
            )
        else:
            env.update({"SMTP_HOST": "127.0.0.1", "SMTP_SECURITY": "none"})
            env.update({"SMTP_SENDER": "kube@dinsos.example.id"})
        platform = Platform(
            env,
            urls,
            {s: url.replace("+psycopg", "") for s, url in databases.items()},
            {"process": redis_process, "dir": redis_dir, "port": port},
            log_dir,
            sms=sms,
            failover=failover,
            mail=mail,
        )
        workers = {"registry": 2, "grants": 2, "notifications": 1, **(api_workers or {})}
        commands = {
            f"{service}-api": gunicorn_command(
                app_target(service), f"127.0.0.1:{ports[service]}", workers=workers[service]
            )
            for service in NAMES
        }
        commands["relay"] = [sys.executable, "-m", "kube.cli", "relay"]
        commands["scheduler"] = [
            sys.executable,
            *("-m", "celery", "-A", "kube.scheduler", "beat", "--loglevel", "INFO"),
            *("--schedule", str(log_dir / "beat-schedule")),
        ]
        for service in NAMES:
            commands[f"{service}-worker"] = worker_command(service, node=f"{service}-{run}@%h")
        for name, argv in commands.items():
            platform.processes[name] = Process(name, argv, env, log_dir)
        for url in urls.values():
            wait_until(lambda u=url: _ready(u), timeout=90, interval=0.5)
        for service in NAMES:
            platform.processes[f"{service}-worker"].wait_ready()
        yield platform
    finally:
        if platform is not None:
            for process in platform.processes.values():
                process.stop()
            redis_process = platform.redis["process"]
        redis_process.terminate()
        redis_process.wait(20)
        failover.stop()
        for url in databases.values():
            drop_database(postgres_server, url.rsplit("/", 1)[1])


# Building data through the client, as an office's apps would


class Staff:
    """An office's people, one client each (per thread: a requests session is not shared)."""

    def __init__(self, platform: Platform, region: str = "64", timeout: float = 30.0):
        import threading

        self.platform, self.region, self.timeout = platform, region, timeout
        self.local = threading.local()

    def __getitem__(self, role: str) -> KubeClient:
        clients = self.local.__dict__.setdefault("clients", {})
        if role not in clients:
            sub = dict(TAKERS.values()).get(role, f"e2e-{role}")
            clients[role] = self.platform.client(
                role,
                region=None if role == "admin" else self.region,
                sub=sub,
                timeout=self.timeout,
            )
        return clients[role]

    def take(
        self,
        grant: dict,
        action: str,
        data: dict | None = None,
        comment: str | None = None,
        **kwargs,
    ) -> dict:
        """Take one action as the person whose role takes it, with the version last read."""
        role, sub = TAKERS[action]
        client = self._person(role, sub)
        return client.grants.transition(
            grant["id"], action, comment=comment, data=data, version=grant["version"], **kwargs
        )

    def _person(self, role: str, sub: str) -> KubeClient:
        people = self.local.__dict__.setdefault("people", {})
        if sub not in people:
            people[sub] = self.platform.client(
                role, region=self.region, sub=sub, timeout=self.timeout
            )
        return people[sub]


def member_set(count: int = 5) -> list[dict]:
    """A group's members: the three officers and ordinary members, each with a phone."""
    from registry_factories import member_payload

    roles = ["ketua", "sekretaris", "bendahara", *["anggota"] * (count - 3)]
    return [member_payload(role=role) for role in roles]


def bank_account(name: str, number: int) -> dict:
    return {
        "bank_name": "BRI",
        "account_number": f"0021010{number:08d}",
        "account_holder": name[:200],
    }


def register_group(staff: Staff, name: str, village: str, members: int = 5) -> tuple[dict, list]:
    """One group registered, with its members and bank account, and activated."""
    people = member_set(members)
    group = staff["pendamping"].registry.create_group(
        name=name,
        region_code=village,
        address="Jl. Pahlawan No. 1",
        business_type="tempe",
        founded_on="2021-03-01",
        bank_account=bank_account(name, abs(hash(name)) % 10**8),
    )
    for person in people:
        staff["pendamping"].registry.add_member(group["id"], **person)
    group = staff["verifikator"].registry.change_group_status(group["id"], "activate")
    return group, people


def import_groups(
    staff: Staff, prefix: str, count: int, village: str, *, bank: bool = True, members: int = 5
) -> dict[str, dict]:
    """`count` groups uploaded in one import file, then (in parallel) given a bank account
    and activated; returns {group name: {"id", "phones"}}."""
    import csv
    import io
    from concurrent.futures import ThreadPoolExecutor

    rows = io.StringIO()
    writer = csv.writer(rows)
    columns = ["group_name", "village_code", "business_type", "nik", "kk_number", "name"]
    writer.writerow([*columns, "phone", "role"])
    made: dict[str, dict] = {}
    for number in range(count):
        name = f"{prefix} {number:04d}"
        made[name] = {"phones": []}
        for person in member_set(members):
            made[name]["phones"].append(national(person["phone"]))
            writer.writerow(
                [
                    name,
                    village,
                    "tempe",
                    person["nik"],
                    person["kk_number"],
                    person["name"],
                    person["phone"],
                    person["role"],
                ]
            )
    outcome = staff["pendamping"].registry.import_file(
        rows.getvalue().encode(), filename="kelompok.csv", timeout=300
    )
    assert outcome["status"] == "done", outcome
    for group in staff["pendamping"].registry.iter_groups(q=prefix):
        if group["name"] in made:
            made[group["name"]]["id"] = group["id"]
    assert all("id" in g for g in made.values()), outcome

    def ready(item):
        name, group = item
        if bank:
            staff["pendamping"].registry.update_group(
                group["id"], bank_account=bank_account(name, int(name[-4:]))
            )
        staff["verifikator"].registry.change_group_status(group["id"], "activate")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(ready, made.items()))
    return made


def wait_known_to_grants(staff: Staff, group_ids: Iterable[str], timeout: float = 120) -> None:
    """Until grants' copy of each group is active (the registry's events arrived)."""
    wanted = set(group_ids)

    def known():
        active = {g["id"] for g in staff["admin"].grants.iter_groups(status="active")}
        return wanted <= active

    wait_until(known, timeout=timeout, interval=0.5)


def documents(staff: Staff) -> dict[str, list[str]]:
    """Each route's documents, from its newest version."""
    routes = staff["admin"].request("grants", "GET", "/api/v1/workflows").json()
    return {w["key"]: w["definition"]["documents"] for w in routes if w["latest"]}


def make_program(staff: Staff, route: str, name: str, budget: int = 5_000_000_000) -> dict:
    """A province's own (regional, APBD) programme or the ministry's national (APBN) one."""
    fields = {
        "name": name,
        "fiscal_year": 2026,
        "total_budget": budget,
        "amount_rule": "per_member",
        "amount": 2_000_000,
        "min_members": 5,
        "max_members": 20,
    }
    if route == "regional":
        return staff["kepala_dinas"].grants.create_program(
            funding_source="apbd_province", region_code="64", **fields
        )
    return staff["admin"].grants.create_program(funding_source="apbn", region_code=None, **fields)


def apply(staff: Staff, program: dict, group_id: str, docs: list[str]) -> dict:
    return staff._person(*TAKERS["submit"]).grants.create_grant(
        group_id=group_id,
        program_id=program["id"],
        business_plan="Menambah produksi tempe menjadi 50 kg kedelai per hari.",
        documents=dict.fromkeys(docs, True),
    )
