"""Notifications benchmark: SMS delivery through one notifications worker, and the time from a
grant transition to its SMS at the gateway, each beside a physical baseline measured in the
same run on the same machine.

Creates its own grants and notifications databases and Redis key prefix, and starts real
processes: a local HTTP SMS gateway (bench/sms_gateway.py, answering as the `userkey` preset
expects), one notifications Celery worker (prefork, concurrency 1, as `make run` starts it),
the grant service under gunicorn, the outbox relay (`kube relay grants`) and, for the
baseline, a Celery worker of one trivial task (bench/celery_probe.py).

1. Delivery rate: a broadcast's queued SMS, their deliver tasks sent as the API sends them,
   from the first send to the last `sent` committed; beside a plain loop POSTing the same
   forms to the same gateway with one requests.Session.
2. Latency: submit and return one application in turn through the grants API; from each
   response to the group's SMS at the gateway, through the relay and the worker; beside a
   trivial Celery task's round trip over the same Redis, measured between the transitions.

Figures are printed, never asserted; one table closes the output.

    .venv/bin/python bench/notifications.py --help
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import redis
import requests

# Helpers of the registry benchmark, beside this script (run as `python bench/notifications.py`).
from celery_probe import PONG, probe_celery
from registry import (
    add_server_arguments,
    backend_pids,
    child_pids,
    load_average,
    log_tail,
    machine_busy_cpu,
    machine_facts,
    percentile,
    postgres_server,
    process_cpu,
    redis_server,
    step,
    stop_on_sigterm,
    stop_process,
    tagged_url,
)
from sqlalchemy import func, select, text

from kube.catalogue import app_target, worker_target
from kube.localinfra import create_database, database_url, drop_database, free_port
from kube.localrun import gunicorn_command, worker_command
from services.grants import definitions
from services.grants.handlers import apply_group_snapshot as project_into_grants
from services.grants.models import EVENT_TABLES as GRANT_EVENTS
from services.grants.service import SERVICE as GRANTS
from services.notifications.broadcasts import create_broadcast
from services.notifications.handlers import apply_group_snapshot as project_into_notifications
from services.notifications.models import EVENT_TABLES as NOTIFICATION_EVENTS
from services.notifications.models import Message
from services.notifications.service import SERVICE as NOTIFICATIONS
from services.notifications.tasks import DELIVER, send_deliveries
from shared.auth import issue_token
from shared.config import load_settings
from shared.db import utcnow
from shared.events.contracts import contract_for
from shared.migrate import upgrade
from shared.scope import NATIONWIDE
from shared.service import ServiceContext, build_context

ROOT = Path(__file__).resolve().parent.parent
# PostgreSQL application names of this process's connections and of each process's.
SETUP = "kube-bench-setup"
WORKER = "kube-bench-notifications-worker"
RELAY = "kube-bench-relay"
API = "kube-bench-grants"
REGION = "64"  # Kalimantan Timur: the office every request comes from
SAMARINDA = "6472"
USERKEY, PASSKEY = "bench-user", "bench-pass"
SUBMITTER, VERIFIER = "pendamping-bench", "verifikator-bench"
MEMBERS_PER_BROADCAST_GROUP = 10
BROADCAST_TEXT = (
    "Dinas Sosial Kaltim: pelatihan pembukuan KUBE hari Sabtu pukul 09.00 di aula kecamatan. "
    "Mohon ketua dan bendahara hadir."
)
RETURN_REASON = "Foto tempat usaha belum jelas."
# Every document of the regional route (the route of a provincial programme), checked.
# Celery's own line when a task returns: its name, id and how long the task function ran.
TASK_SUCCEEDED = re.compile(r"Task ([\w.]+)\[([^\]]+)\] succeeded in ([0-9.e-]+)s")
CHECKLIST = dict.fromkeys(
    next(d for d in definitions.shipped_definitions() if d["key"] == "regional")["documents"],
    True,
)


# --- Options --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with every default documented in --help."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--messages",
        type=int,
        default=2000,
        help="SMS delivered by the worker, and POSTed by the baseline loop (default %(default)s)",
    )
    parser.add_argument(
        "--transitions",
        type=int,
        default=100,
        help="measured grant transitions, submit and return in turn (default %(default)s)",
    )
    parser.add_argument(
        "--members",
        type=int,
        default=5,
        help="members (each with a phone) of the group whose grant moves: SMS per transition "
        "(default %(default)s, the smallest group a grant accepts)",
    )
    parser.add_argument(
        "--round-trips",
        type=int,
        default=2,
        help="baseline Celery round trips before each transition (default %(default)s)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.2,
        help="seconds between one transition's last SMS and the next round trips, so each "
        "transition meets idle processes (default %(default)s)",
    )
    parser.add_argument(
        "--gunicorn-workers",
        type=int,
        default=2,
        help="gunicorn sync workers of the grant service (default %(default)s)",
    )
    add_server_arguments(
        parser, redis="the run's keys and queues carry their own prefix and are deleted at the end"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases and the process logs afterwards"
    )
    args = parser.parse_args(argv)
    for name in ("messages", "transitions", "members", "round_trips", "gunicorn_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 5 <= args.members <= 20:
        parser.error("--members must be from 5 to 20 (what a group may have)")
    return args


# --- Output ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One row of the closing table: a figure, its baseline, their ratio and the target."""

    name: str
    figure: str
    baseline: str
    ratio: str
    target: str


@dataclass
class Report:
    """Figures printed as they come; comparisons, breakdowns and notes printed again at the
    end."""

    comparisons: list[Comparison] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, name: str, value: str) -> None:
        print(f"    {name}: {value}", flush=True)

    def detail(self, name: str, value: str) -> None:
        self.details.append((name, value))
        print(f"    {name}: {value}", flush=True)

    def compare(self, comparison: Comparison) -> None:
        self.comparisons.append(comparison)
        print(
            f"    {comparison.name}: {comparison.figure} | baseline {comparison.baseline} | "
            f"{comparison.ratio} | target {comparison.target}",
            flush=True,
        )

    def note(self, message: str) -> None:
        self.notes.append(message)
        print(f"    NOTE: {message}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(values: list[float]) -> str:
    """`p50 .. ms, p99 .. ms` of durations in seconds (nearest rank)."""
    ordered = sorted(values)
    return f"p50 {ms(percentile(ordered, 50))}, p99 {ms(percentile(ordered, 99))}"


# --- Processes ------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds used by named sets of processes while it runs, read from /proc as
    bench/registry.py does, as numbers. It samples every second: processes come and
    go during a run (the worker replaces its pool process every 1,000 tasks, and with it the
    database connections), and one that ended keeps the CPU it had when last seen, a second
    before at most."""

    def __init__(self, roles: Callable[[], dict[str, list[int]]], every: float = 1.0):
        self.roles = roles
        self.first: dict[int, float] = {}  # a process's CPU when first seen (0 if new)
        self.last: dict[int, float] = {}
        self.role_of: dict[int, str] = {}
        self._sample(initial=True)
        self.wall, self.busy = time.perf_counter(), machine_busy_cpu()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self.thread.start()

    def _sample(self, initial: bool = False) -> None:
        for role, pids in self.roles().items():
            for pid in pids:
                used = process_cpu(pid)
                if pid not in self.first:
                    self.first[pid] = used if initial else 0.0
                    self.role_of[pid] = role
                if used:  # 0: the process is gone; keep what it had
                    self.last[pid] = used

    def _run(self, every: float) -> None:
        while not self.done.wait(every):
            self._sample()

    def stop(self) -> tuple[dict[str, float], float, float]:
        """Each role's CPU seconds, the rest of the machine's, and the share of all cores that
        was busy."""
        self.done.set()
        self.thread.join()
        self._sample()
        wall, busy = time.perf_counter(), machine_busy_cpu()
        used = dict.fromkeys(self.roles(), 0.0)
        for pid, role in self.role_of.items():
            used[role] += self.last.get(pid, self.first[pid]) - self.first[pid]
        other = max(busy - self.busy - sum(used.values()), 0.0)
        share = (busy - self.busy) / max((wall - self.wall) * (os.cpu_count() or 1), 1e-9)
        return used, other, share


@dataclass
class Child:
    """A process of the run, logging to a file."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def pids(self) -> list[int]:
        return [self.process.pid, *child_pids(self.process.pid)]

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{log_tail(self.log_path)}"
            )


def start_child(
    name: str, command: list[str], env: dict, log_dir: Path, stack: ExitStack, cwd: Path = ROOT
) -> Child:
    """Start `command`, stopped when `stack` closes."""
    log_path = log_dir / f"{name}.log"
    # A file, not a pipe: nobody reads a pipe during the run, and a full one blocks the child.
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT
        )
    stack.callback(stop_process, process)
    return Child(name, process, log_path)


def wait_for(child: Child, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Poll `ready` until it is true; fail with the child's log if it dies or stalls."""
    deadline = time.monotonic() + timeout
    while not ready():
        child.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} in {timeout:.0f} s:\n{log_tail(child.log_path)}")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def task_runtimes(child: Child, task: str) -> dict[str, float]:
    """Seconds each `task` ran in the worker's pool process (id -> seconds), from its log."""
    log = child.log_path.read_text("utf-8", "replace")
    return {
        task_id: float(seconds)
        for name, task_id, seconds in TASK_SUCCEEDED.findall(log)
        if name == task
    }


def celery_worker(target: str, node: str) -> list[str]:
    """A Celery worker of `target` exactly as `make run` starts a service's (prefork,
    concurrency 1)."""
    command = worker_command("notifications", node=node)
    command[command.index(worker_target("notifications"))] = target
    return command


def start_worker(name: str, target: str, env: dict, log_dir, stack, cwd: Path = ROOT) -> Child:
    node = f"{name}-{env['KUBE_QUEUE_PREFIX']}@%h"
    child = start_child(name, celery_worker(target, node), env, log_dir, stack, cwd)
    wait_for(child, lambda: " ready." in child.log_path.read_text(errors="replace"), name)
    return child


# --- Setup ----------------------------------------------------------------------------------


@dataclass
class Setup:
    """What the setup prepared for the measurements."""

    grants: ServiceContext
    notifications: ServiceContext
    env: dict[str, str]
    gateway_url: str
    gateway: Child
    worker: Child
    probe: Child
    relay: Child
    api: Child
    api_url: str
    tokens: dict[str, str]
    facts: list[tuple[str, str]]

    @property
    def prefix(self) -> str:
        return self.env["KUBE_QUEUE_PREFIX"]

    def received(self, since: int, count: int = 0, timeout: float = 30) -> list[dict]:
        """What reached the gateway from the `since`th message on, once `count` have."""
        response = requests.get(
            f"{self.gateway_url}/received",
            params={"since": since, "count": count, "timeout": timeout},
            timeout=timeout + 5,
        )
        response.raise_for_status()
        return response.json()


def bench_environment(db_urls: dict[str, str], redis_url: str, prefix: str, gateway: str):
    """Every process's settings: own databases, queues, secret; the local gateway; no rate
    limit and no quiet hours, so nothing waits on purpose."""
    return {
        "GRANTS_DATABASE_URL": db_urls["grants"],
        "NOTIFICATIONS_DATABASE_URL": db_urls["notifications"],
        "REDIS_URL": redis_url,
        "KUBE_QUEUE_PREFIX": prefix,
        "KUBE_JWT_SECRET": secrets.token_hex(32),
        # Empty means unset: our HS256 tokens carry no audience or issuer to check.
        "KUBE_JWT_AUDIENCE": "",
        "KUBE_JWT_ISSUER": "",
        "SMS_PROVIDER": "http",
        "SMS_GATEWAY_URL": gateway,
        "SMS_GATEWAY_USERKEY": USERKEY,
        "SMS_GATEWAY_PASSKEY": PASSKEY,
        "SMS_GATEWAY_TIMEOUT": "5",
        "SMS_RATE_PER_SECOND": "0",
        "EMAIL_RATE_PER_SECOND": "0",
        # The worker needs a mail server's settings to start; nothing here sends email.
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),
        "SMTP_SECURITY": "none",
        "SMTP_SENDER": "kube-bench@localhost",
        "KUBE_QUIET_HOURS": "off",
        "LOG_LEVEL": "INFO",
        "BENCH_PROBE_QUEUE": f"{prefix}.probe",
    }


def delete_keys(redis_url: str, prefix: str) -> None:
    """Remove the run's Redis keys and queues, and its queues' bindings."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        # kombu's bindings: sets named after our queues' exchanges and queues, and our
        # queues in shared sets (other keys there, such as a sorted set of deadlines, are
        # not ours).
        for key in client.scan_iter(match="_kombu.binding*", count=1000):
            if prefix.encode() in key:
                client.delete(key)
                continue
            if client.type(key) != b"set":
                continue
            ours = [m for m in client.smembers(key) if prefix.encode() in m]
            if ours:
                client.srem(key, *ours)
    except redis.RedisError as exc:
        print(f"    could not delete the run's Redis keys: {exc}", flush=True)
    finally:
        client.close()


def prepare(args: argparse.Namespace, stack: ExitStack, report: Report) -> Setup:
    """Two migrated databases, Redis, contexts in this process, and every process of the run."""
    run_id = uuid.uuid4().hex[:8]
    prefix = f"kubebench-{run_id}"
    server_url = postgres_server(args.database_url)
    redis_url = redis_server(args.redis_url, stack)
    stack.callback(delete_keys, redis_url, prefix)
    db_urls = {}
    for service in (GRANTS, NOTIFICATIONS):
        name = f"kube_bench_{run_id}_{service.name}"
        create_database(server_url, name, exist_ok=False)
        db_urls[service.name] = database_url(server_url, name)
        if args.keep:
            stack.callback(print, f"Kept the database: {db_urls[service.name]}")
        else:
            stack.callback(drop_database, server_url, name)
        upgrade(service.migrations, db_urls[service.name])
    print(f"    databases kube_bench_{run_id}_*, Redis key prefix {prefix}", flush=True)
    log_dir = Path(tempfile.mkdtemp(prefix="kube-bench-notifications-"))
    if args.keep:
        stack.callback(print, f"Kept the logs: {log_dir}")
    else:
        stack.callback(shutil.rmtree, log_dir, ignore_errors=True)

    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    env = bench_environment(db_urls, redis_url, prefix, f"{gateway_url}/sms")
    tagged = {name: tagged_url(url, SETUP) for name, url in db_urls.items()}
    # Before the contexts are built: their settings are read from the environment.
    os.environ.update({**env, **{f"{n.upper()}_DATABASE_URL": u for n, u in tagged.items()}})
    contexts = {}
    for service in (GRANTS, NOTIFICATIONS):
        contexts[service.name] = build_context(service, load_settings(service.name))
        stack.callback(contexts[service.name].db.dispose)
    if os.getloadavg()[0] > 0.5:
        report.note(
            f"the 1-minute load average was {os.getloadavg()[0]:.2f} at the start: other work "
            "is sharing the CPUs ('other processes' in the CPU figures says how much)"
        )

    def with_db(service: str, application_name: str) -> dict[str, str]:
        key = f"{service.upper()}_DATABASE_URL"
        return {**env, key: tagged_url(db_urls[service], application_name)}

    gateway = start_child(
        "sms-gateway",
        [sys.executable, str(ROOT / "bench" / "sms_gateway.py"), "--port", str(gateway_port)],
        env,
        log_dir,
        stack,
    )
    wait_for(gateway, lambda: answers(f"{gateway_url}/received?timeout=0"), "the gateway")
    worker = start_worker(
        "notifications-worker",
        worker_target("notifications"),
        with_db("notifications", WORKER),
        log_dir,
        stack,
    )
    probe = start_worker("probe-worker", "celery_probe", env, log_dir, stack, ROOT / "bench")
    relay = start_child(
        "relay",
        [sys.executable, "-m", "kube.cli", "relay", "grants"],
        with_db("grants", RELAY),
        log_dir,
        stack,
    )
    api_port = free_port()
    api = start_child(
        "grants-api",
        gunicorn_command(
            app_target("grants"), f"127.0.0.1:{api_port}", workers=args.gunicorn_workers
        ),
        with_db("grants", API),
        log_dir,
        stack,
    )
    api_url = f"http://127.0.0.1:{api_port}"
    wait_for(api, lambda: answers(f"{api_url}/readyz"), "the grant service")
    relay.check()
    print(f"    gateway {gateway_url}, grants {api_url}; logs {log_dir}", flush=True)
    # The contexts log INFO lines as JSON; here they would only interleave with the figures.
    logging.getLogger().setLevel(logging.WARNING)
    secret = env["KUBE_JWT_SECRET"]
    tokens = {
        "admin": issue_token(secret, sub="admin-bench", roles=["admin"], region="*"),
        "pendamping": issue_token(secret, sub=SUBMITTER, roles=["pendamping"], region=REGION),
        "verifikator": issue_token(secret, sub=VERIFIER, roles=["verifikator"], region=REGION),
    }
    return Setup(
        contexts["grants"],
        contexts["notifications"],
        env,
        gateway_url,
        gateway,
        worker,
        probe,
        relay,
        api,
        api_url,
        tokens,
        machine_facts(contexts["notifications"]),
    )


def auth(setup: Setup, role: str, **headers) -> dict:
    return {"Authorization": f"Bearer {setup.tokens[role]}", **headers}


class Phones:
    """Distinct Indonesian mobile numbers (E.164)."""

    def __init__(self):
        self.issued = 0

    def next(self) -> str:
        self.issued += 1
        return f"+62813{10_000_000 + self.issued}"


def group_snapshot(name: str, members: int, phones: Phones) -> dict:
    """A group.updated payload as the registry sends it: officers, members with phones, and
    a bank account."""
    roles = ["ketua", "sekretaris", "bendahara", *["anggota"] * (members - 3)]
    return {
        "group": {
            "group_id": str(uuid.uuid4()),
            "version": 1,
            "name": name,
            "region_code": f"{SAMARINDA}011001",
            "status": "active",
            "business_type": "tempe",
            "member_count": members,
            "members": [
                {
                    "member_id": str(uuid.uuid4()),
                    "name": f"Anggota {i + 1}",
                    "role": role,
                    "nik_masked": "6472********0001",
                    "phone": phones.next(),
                    "email": None,
                    "language": "id",
                }
                for i, role in enumerate(roles)
            ],
            "bank_account": {
                "bank_name": "Bankaltimtara",
                "account_number": "1240012345678",
                "account_holder": name,
            },
        }
    }


def project(setup: Setup, snapshots: list[dict], *, into_grants: bool) -> None:
    """Apply the snapshots as the registry's events would be, in notifications (and grants)."""
    schema = contract_for("group.updated").schema()
    loaded = [schema.load(snapshot) for snapshot in snapshots]
    with setup.notifications.db.transaction() as session:
        for payload in loaded:
            project_into_notifications(session, payload, {})
    if into_grants:
        with setup.grants.db.transaction() as session:
            for payload in loaded:
                project_into_grants(session, payload, {})


# --- 1. Delivery rate -----------------------------------------------------------------------


def baseline_loop(setup: Setup, count: int, phones: Phones) -> tuple[float, int]:
    """POST `count` SMS forms, one after another, with one requests.Session, checking each
    answer as the userkey preset does; the seconds taken and the failures."""
    url = f"{setup.gateway_url}/sms"
    forms = [
        {
            "userkey": USERKEY,
            "passkey": PASSKEY,
            "to": "0" + phones.next()[3:],  # national form, as the preset sends it
            "message": BROADCAST_TEXT,
        }
        for _ in range(count)
    ]
    failures = 0
    with requests.Session() as session:
        started = time.perf_counter()
        for form in forms:
            response = session.post(url, data=form, timeout=5, allow_redirects=False)
            if response.status_code != 200 or response.json().get("status") != "1":
                failures += 1
        return time.perf_counter() - started, failures


def measure_loop(setup: Setup, count: int, phones: Phones, label: str, report: Report) -> float:
    """The plain loop's rate, with the CPU it and the gateway used."""
    meter = CpuMeter(lambda: {"this process": [os.getpid()], "gateway": setup.gateway.pids()})
    seconds, failures = baseline_loop(setup, count, phones)
    used, other, share = meter.stop()
    report.figure(
        f"Baseline loop ({label})",
        f"{count / seconds:,.0f} SMS/s ({count:,} in {seconds:.2f} s, {failures} failed); "
        + cpu_summary(used, other, share, count, "SMS"),
    )
    return count / seconds


def broadcast(setup: Setup, count: int, phones: Phones, label: str) -> tuple[uuid.UUID, list]:
    """A broadcast reaching `count` members of new groups (count rounded up to whole groups):
    its queued messages, made as the API makes them, not yet sent for."""
    groups = -(-count // MEMBERS_PER_BROADCAST_GROUP)
    snapshots = [
        group_snapshot(f"KUBE {label} {n}", MEMBERS_PER_BROADCAST_GROUP, phones)
        for n in range(groups)
    ]
    project(setup, snapshots, into_grants=False)
    with setup.notifications.db.transaction() as session:
        made, ids = create_broadcast(
            session,
            {
                "group_ids": [uuid.UUID(s["group"]["group_id"]) for s in snapshots],
                "text": BROADCAST_TEXT,
                "audience": "all_members",
            },
            scope=NATIONWIDE,
            actor="bench",
            now=utcnow(),
            quiet=False,
        )
    return made.id, ids


def settled(setup: Setup, broadcast_id: uuid.UUID) -> dict[str, int]:
    """The broadcast's messages by status."""
    with setup.notifications.db.transaction() as session:
        return dict(
            session.execute(
                select(Message.status, func.count())
                .where(Message.broadcast_id == broadcast_id)
                .group_by(Message.status)
            ).all()
        )


def deliver_all(setup: Setup, broadcast_id, ids: list, timeout: float) -> tuple[float, dict]:
    """Send for every message and wait until none is queued or sending; the wall-clock time
    of the first send, and the messages by status."""
    context = setup.notifications
    started = time.time()
    send_deliveries(context.celery, context.settings.queue, ids)
    deadline = time.monotonic() + timeout
    while True:
        # Polled slowly: the end is read from the rows, not from when this loop notices it.
        time.sleep(0.25)
        counts = settled(setup, broadcast_id)
        if not counts.get("queued") and not counts.get("sending"):
            return started, counts
        setup.worker.check()
        if time.monotonic() > deadline:
            return started, counts


def delivery_rows(setup: Setup, broadcast_id) -> list[tuple[datetime, datetime]]:
    """(task start, `sent` committed) of each sent message, in the order they were taken.

    `sent_at` is the `now` the deliver task started with; `updated_at` is set (the column's
    onupdate) by the second transaction's UPDATE, a statement before its commit."""
    with setup.notifications.db.transaction() as session:
        return list(
            session.execute(
                select(Message.sent_at, Message.updated_at)
                .where(Message.broadcast_id == broadcast_id, Message.status == "sent")
                .order_by(Message.sent_at)
            ).all()
        )


def delivery_roles(setup: Setup) -> Callable[[], dict[str, list[int]]]:
    def roles() -> dict[str, list[int]]:
        return {
            # The Celery parent takes messages from Redis and acknowledges them; the pool
            # process runs the task.
            "worker parent": [setup.worker.process.pid],
            "worker pool process": child_pids(setup.worker.process.pid),
            "its PostgreSQL": backend_pids(setup.notifications, WORKER),
            "gateway": setup.gateway.pids(),
            "this process": [os.getpid(), *backend_pids(setup.notifications, SETUP)],
        }

    return roles


def cpu_summary(used: dict[str, float], other: float, share: float, per: int, unit: str) -> str:
    parts = ", ".join(f"{role} {seconds / per * 1000:.2f}" for role, seconds in used.items())
    return (
        f"{parts}, other processes {other / per * 1000:.2f} ms CPU per {unit}; "
        f"machine {share:.0%} busy"
    )


def measure_delivery(setup: Setup, args: argparse.Namespace, report: Report) -> None:
    """The worker's delivery rate beside the plain loop's; the loop runs before and after the
    worker, so drift on a shared machine shows, and the ratio is to their mean."""
    phones = Phones()
    baseline_loop(setup, 100, phones)  # warm-up: the connection, the server's threads
    before = measure_loop(setup, args.messages, phones, "before the worker", report)
    rate = measure_worker(setup, args.messages, phones, report)
    after = measure_loop(setup, args.messages, phones, "after the worker", report)
    baseline = statistics.mean((before, after))
    report.compare(
        Comparison(
            "SMS delivered per second, one notifications worker (prefork, concurrency 1)",
            f"{rate:,.0f} SMS/s",
            f"{baseline:,.0f} SMS/s (plain requests.Session loop; {before:,.0f} before, "
            f"{after:,.0f} after)",
            f"{rate / baseline:.2f}x",
            ">= 0.7x: " + ("met" if rate / baseline >= 0.7 else "missed"),
        )
    )


def measure_worker(setup: Setup, count: int, phones: Phones, report: Report) -> float:
    """Warm the worker up, then time `count` deliveries from the first send to the last
    `sent`; the rate, and where a message's time goes."""
    warm_id, warm_ids = broadcast(setup, 50, phones, "Pemanasan")
    deliver_all(setup, warm_id, warm_ids, timeout=120)
    broadcast_id, ids = broadcast(setup, count, phones, "Siaran")
    with setup.notifications.db.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        connection.execute(text("VACUUM (ANALYZE) messages"))
    arrived_before = len(setup.received(0))
    meter = CpuMeter(delivery_roles(setup))
    started, counts = deliver_all(setup, broadcast_id, ids, timeout=max(120, count / 5))
    used, other, share = meter.stop()
    pools = sum(1 for role in meter.role_of.values() if role == "worker pool process")
    rows = delivery_rows(setup, broadcast_id)
    arrivals = setup.received(arrived_before)
    if counts.get("sent", 0) != len(ids):
        report.note(f"of {len(ids):,} messages: {counts}")
    if not rows:
        raise RuntimeError(f"no message was sent: {counts}\n{log_tail(setup.worker.log_path)}")
    seconds = max(done for _, done in rows).timestamp() - started
    rate = len(rows) / seconds
    report.figure(
        "Worker",
        f"{rate:,.0f} SMS/s ({len(rows):,} sent in {seconds:.2f} s, first send to last `sent`; "
        f"{pools} pool processes, as Celery replaces one every 1,000 tasks); "
        + cpu_summary(used, other, share, len(rows), "SMS"),
    )
    # The last deliver tasks in the log are this broadcast's (the warm-up's came before).
    runtimes = list(task_runtimes(setup.worker, DELIVER).values())[-len(rows) :]
    explain_delivery(rows, arrivals, seconds, runtimes, report)
    return rate


def explain_delivery(
    rows, arrivals: list[dict], seconds: float, runtimes: list[float], report: Report
) -> None:
    """Split each deliver task's batch at the SMS it brought to the gateway: task start ->
    first SMS (the claiming transaction), first -> last SMS (the provider calls, several in
    flight), last SMS -> `sent` written (the recording transaction's UPDATE), and written ->
    the next batch's start (the outbox rows, commit, Celery's hand-over)."""
    times = sorted(a["at"] for a in arrivals)
    batches: dict[datetime, list[datetime]] = {}
    for start, done in rows:
        batches.setdefault(start, []).append(done)
    spans = sorted(
        (start.timestamp(), max(done).timestamp(), len(done)) for start, done in batches.items()
    )
    claim, calls, record, between = [], [], [], []
    for i, (start, done, _) in enumerate(spans):
        inside = [t for t in times if start <= t <= done]
        if inside:
            claim.append(inside[0] - start)
            calls.append(inside[-1] - inside[0])
            record.append(done - inside[-1])
        if i + 1 < len(spans):
            between.append(spans[i + 1][0] - done)
    sizes = [size for _, _, size in spans]
    runtimes = runtimes[-len(spans) :]
    report.detail(
        "Delivery, per deliver task (medians)",
        f"{len(spans)} tasks of {statistics.median(sizes):.0f} messages; "
        f"{ms(seconds / len(rows))} of wall time per message (mean); the task ran "
        f"{ms(statistics.median(runtimes)) if runtimes else 'n/a'} (Celery's log); task start -> "
        f"first SMS at the gateway {ms(statistics.median(claim))} (claiming transaction); "
        f"first -> last SMS {ms(statistics.median(calls))} (provider calls in flight); last SMS "
        f"-> `sent` written {ms(statistics.median(record))} (recording transaction); written -> "
        f"next task start {ms(statistics.median(between)) if between else 'n/a'} (outbox rows, "
        "commit, Celery's ack, fetch and hand-over)",
    )


# --- 2. Latency -----------------------------------------------------------------------------


@dataclass
class Transition:
    """One measured transition: when its answer came, the grant version it made, the SMS."""

    answered: float
    request_seconds: float
    version: int
    arrivals: list[float]


class Prober:
    """Round trips of a trivial task through the probe worker over the run's Redis."""

    def __init__(self, setup: Setup):
        self.celery = probe_celery(setup.env["REDIS_URL"], setup.env["BENCH_PROBE_QUEUE"])
        self.redis = redis.Redis.from_url(setup.env["REDIS_URL"])
        self.reply_key = f"{setup.prefix}:probe-reply"
        self.queue = setup.env["BENCH_PROBE_QUEUE"]
        self.round_trips: list[float] = []
        self.one_way: list[float] = []

    def once(self) -> None:
        started = time.time()
        self.celery.send_task(PONG, args=[self.reply_key], queue=self.queue)
        reply = self.redis.blpop([self.reply_key], timeout=10)
        finished = time.time()
        if reply is None:
            raise RuntimeError("the probe worker did not answer in 10 s")
        self.round_trips.append(finished - started)
        self.one_way.append(float(reply[1]) - started)


def create_grant(setup: Setup, members: int) -> dict:
    """A group with `members` reachable members, projected into grants and notifications, and
    a draft application of it through the API."""
    snapshot = group_snapshot("KUBE Tempe Maju Bersama", members, Phones())
    project(setup, [snapshot], into_grants=True)
    program = requests.post(
        f"{setup.api_url}/api/v1/programs",
        json={
            "name": "UEP KUBE Kaltim 2026",
            "fiscal_year": 2026,
            "funding_source": "apbd_province",
            "region_code": REGION,
            "total_budget": 1_000_000_000,
            "amount_rule": "per_member",
            "amount": 2_000_000,
            "min_members": 5,
            "max_members": 20,
        },
        headers=auth(setup, "admin"),
        timeout=30,
    )
    if program.status_code != 201:
        raise RuntimeError(f"creating a programme: HTTP {program.status_code} {program.text}")
    grant = requests.post(
        f"{setup.api_url}/api/v1/grants",
        json={
            "program_id": program.json()["id"],
            "group_id": snapshot["group"]["group_id"],
            "business_plan": "Modal kerja dan peralatan produksi tempe.",
            "documents": CHECKLIST,
        },
        headers=auth(setup, "pendamping"),
        timeout=30,
    )
    if grant.status_code != 201:
        raise RuntimeError(f"creating an application: HTTP {grant.status_code} {grant.text}")
    return grant.json()


def move(setup: Setup, session: requests.Session, grant: dict, members: int, arrived: int):
    """Submit a draft or return a submitted application; wait for its SMS at the gateway."""
    if grant["stage"] == "draft":
        role, body = "pendamping", {"action": "submit", "data": {}}
    else:
        role, body = "verifikator", {"action": "return", "comment": RETURN_REASON, "data": {}}
    started = time.perf_counter()
    response = session.post(
        f"{setup.api_url}/api/v1/grants/{grant['id']}/transitions",
        json=body,
        headers=auth(setup, role, **{"If-Match": f'"{grant["version"]}"'}),
        timeout=30,
    )
    answered = time.time()
    request_seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{body['action']}: HTTP {response.status_code} {response.text}")
    moved = response.json()
    sms = setup.received(arrived, arrived + members, timeout=30)
    if len(sms) < members:
        raise RuntimeError(
            f"{len(sms)} of {members} SMS reached the gateway in 30 s after {body['action']}"
            f"\n{log_tail(setup.worker.log_path)}"
        )
    if len(sms) > members:
        raise RuntimeError(f"{len(sms)} SMS reached the gateway for one transition of {members}")
    return moved, Transition(answered, request_seconds, moved["version"], [s["at"] for s in sms])


def measure_latency(setup: Setup, args: argparse.Namespace, report: Report) -> None:
    """Transitions one at a time, each after a few bare round trips; the figures, and where
    the time goes."""
    grant = create_grant(setup, args.members)
    prober = Prober(setup)
    arrived = len(setup.received(0))
    with requests.Session() as session:
        for _ in range(4):  # warm-up: every process has done the whole path once
            prober.once()
            grant, _ = move(setup, session, grant, args.members, arrived)
            arrived += args.members
            time.sleep(args.pause)
        prober.round_trips.clear()
        prober.one_way.clear()
        transitions = []
        for _ in range(args.transitions):
            for _ in range(args.round_trips):
                prober.once()
            grant, transition = move(setup, session, grant, args.members, arrived)
            transitions.append(transition)
            arrived += args.members
            time.sleep(args.pause)
    first = [t.arrivals[0] - t.answered for t in transitions]
    last = [t.arrivals[-1] - t.answered for t in transitions]
    trips = sorted(prober.round_trips)
    target = 3 * percentile(trips, 99) + 0.010
    report.figure(
        "Baseline round trip (send_task -> worker -> reply)",
        f"{spread(prober.round_trips)} over {len(trips)}; send -> worker clock "
        f"{spread(prober.one_way)}",
    )
    report.figure(
        "Transition request (grants API, not in the latency)",
        spread([t.request_seconds for t in transitions]),
    )
    baseline = f"{spread(prober.round_trips)} (trivial Celery task, same Redis)"
    for name, values in (
        ("first SMS", first),
        (f"last SMS of {args.members}", last),
    ):
        ordered = sorted(values)
        p99 = percentile(ordered, 99)
        report.compare(
            Comparison(
                f"Transition response -> {name} at the gateway ({len(values)} transitions)",
                spread(values),
                baseline,
                f"p50 {percentile(ordered, 50) / percentile(trips, 50):.1f}x, "
                f"p99 {p99 / percentile(trips, 99):.1f}x",
                f"p99 <= 3 x {ms(percentile(trips, 99))} + 10 ms = {ms(target)}: "
                + ("met" if p99 <= target else f"missed by {ms(p99 - target)}"),
            )
        )
    explain_latency(setup, transitions, report)


def explain_latency(setup: Setup, transitions: list[Transition], report: Report) -> None:
    """Where a transition's time goes, from the rows each step wrote (wall clock, one
    machine): the relay's publish, the worker taking the event, the messages made and the
    first delivery taken, the provider call, and the rest of the group's SMS."""
    outbox = GRANT_EVENTS.outbox
    with setup.grants.db.transaction() as session:
        events = {
            row.version: (row.id, row.published_at)
            for row in session.execute(
                select(
                    outbox.id,
                    outbox.published_at,
                    outbox.envelope[("payload", "grant", "version")].as_integer().label("version"),
                ).where(outbox.event_type == "grant.stage_changed")
            )
        }
    inbox = NOTIFICATION_EVENTS.inbox
    with setup.notifications.db.transaction() as session:
        handled = dict(session.execute(select(inbox.event_id, inbox.handled_at)).all())
        starts: dict[uuid.UUID, list[float]] = {}
        for event_id, sent_at in session.execute(
            select(Message.event_id, Message.sent_at).where(Message.broadcast_id.is_(None))
        ):
            if sent_at is not None:
                starts.setdefault(event_id, []).append(sent_at.timestamp())
    stages: dict[str, list[float]] = {}
    missing = 0
    for t in transitions:
        event_id, published_at = events.get(t.version, (None, None))
        if event_id is None or published_at is None or event_id not in handled:
            missing += 1
            continue
        marks = [
            ("response -> relay published", t.answered, published_at.timestamp()),
            (
                "published -> notifications worker handling (broker, envelope check)",
                published_at.timestamp(),
                handled[event_id].timestamp(),
            ),
            (
                "handling -> delivery started (messages made, commit, the handling task's end)",
                handled[event_id].timestamp(),
                min(starts[event_id]),
            ),
            (
                "delivery start -> first SMS at gateway (claiming transaction, HTTP)",
                min(starts[event_id]),
                t.arrivals[0],
            ),
            ("first SMS -> last SMS at gateway", t.arrivals[0], t.arrivals[-1]),
        ]
        for name, begin, end in marks:
            stages.setdefault(name, []).append(end - begin)
    if missing:
        report.note(f"{missing} transitions had no complete trail in the rows")
    for name, values in stages.items():
        report.detail(f"Latency: {name}", spread(values))
    # The relay sends each event as a task whose id is `<event id>:<subscriber>`.
    ran = task_runtimes(setup.worker, "notifications.handle_event")
    handlers = [
        ran[f"{events[t.version][0]}:notifications"]
        for t in transitions
        if t.version in events and f"{events[t.version][0]}:notifications" in ran
    ]
    if handlers:
        report.detail(
            "Latency: the handle_event task's own run (Celery's log; inside the two stages "
            "around `handling`)",
            spread(handlers),
        )


# --- The run --------------------------------------------------------------------------------


def print_tables(report: Report, facts: list[tuple[str, str]], intro: str) -> None:
    """The closing Markdown tables after `intro`: each figure beside its baseline, the
    breakdowns, the machine (also used by bench/events.py)."""
    print("\n## Results\n")
    print(intro + "\n")
    print("| Figure | Measured | Baseline | Ratio | Target |\n|---|---|---|---|---|")
    for c in report.comparisons:
        print(f"| {c.name} | {c.figure} | {c.baseline} | {c.ratio} | {c.target} |")
    print("\n| Where the time goes | |\n|---|---|")
    for name, value in report.details:
        print(f"| {name} | {value} |")
    print("\n| Machine | |\n|---|---|")
    for name, value in facts:
        print(f"| {name} | {value} |")
    for message in report.notes:
        print(f"\nNOTE: {message}")


def print_summary(report: Report, facts: list[tuple[str, str]], args) -> None:
    print_tables(
        report,
        facts,
        f"{args.messages:,} SMS through one notifications worker (prefork, concurrency 1) to a "
        f"local HTTP gateway; {args.transitions} grant transitions of a group of "
        f"{args.members} members ({args.members} SMS each) through the grants API "
        f"({args.gunicorn_workers} gunicorn workers), `kube relay grants` and the worker, "
        f"{args.round_trips} bare Celery round trips before each.",
    )


def benchmark(args: argparse.Namespace, stack: ExitStack, report: Report):
    """Every step in order (cleanup goes on `stack` as each resource appears)."""
    with step("1. Databases, gateway, notifications worker, probe worker, relay, grants API"):
        setup = prepare(args, stack, report)
    with step(f"2. Delivery rate: {args.messages:,} SMS, worker and plain loop"):
        measure_delivery(setup, args, report)
    with step(f"3. Latency: {args.transitions} transitions, each to its SMS"):
        measure_latency(setup, args, report)
    for child in (setup.gateway, setup.worker, setup.probe, setup.relay, setup.api):
        if child.process.poll() is not None:
            report.note(f"{child.name} exited during the run")
    return [*setup.facts, ("Load average at end (1/5/15 min)", load_average())]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, clean up whatever happens, then print the summary."""
    args = parse_args(argv)
    stop_on_sigterm()
    report = Report()
    # The stack is the `finally`: the processes, the contexts' connections, the databases,
    # the run's Redis keys and a private Redis are released in reverse order of creation.
    with ExitStack() as stack:
        try:
            facts = benchmark(args, stack, report)
        finally:
            print("\n== 4. Cleanup: processes, connections, databases, Redis keys")
    print_summary(report, facts, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
