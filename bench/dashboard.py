"""Dashboard benchmark: each page of the province dashboard (apps/dashboard) with 100,000
groups and 100,000 applications in the databases, beside a bare Flask route measured in the
same run (issue #11: "pages answer within a second").

Creates fresh registry, grants and notifications databases (`kube_bench_<random>_<service>`,
each migrated by its own Alembic migrations) and fills them by COPY and bulk SQL with what
the services themselves store: groups and members as bench/scale.py writes them (NIK and
No. KK encrypted, with their keyed hashes) and mentoring visits in the registry;
applications spread over programmes, stages and regions, each with its hash-chained
history and its budget movements, in grants (and each paid one in the registry's copy);
the groups' contacts, opt-outs and the messages the default rules make of the
applications' steps in notifications. It then runs the three APIs, the dashboard and
bench/baseline.py under gunicorn as `make run` does, signs in through the dashboard's own
sign-in form once per role, and times each page from a requests.Session holding the session
cookie, one request after another (and the overview with a few clients at once). The
report calls of the overview and of the comparison are also timed alone, through the
Python client, to show how much of a page is the APIs. Figures are printed, never
asserted; one table closes the output.

    .venv/bin/python bench/dashboard.py --help
    .venv/bin/python bench/dashboard.py --groups 2000 --applications 2000 --messages 5000 \\
        --requests 5   # a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import psycopg
import redis
import requests
from notifications import Comparison
from notifications import Report as NotificationsReport

# Helpers of the other benchmarks, beside this script (run as `python bench/dashboard.py`).
from registry import (
    add_server_arguments,
    bench_environment,
    load_average,
    log_tail,
    machine_facts,
    percentile,
    postgres_server,
    redis_server,
    region_rows,
    step,
    stop_on_sigterm,
    stop_process,
    tagged_url,
)
from scale import generate, psycopg_url
from sqlalchemy import select

from kube.catalogue import app_target
from kube.localinfra import create_database, database_url, drop_database, free_port
from kube.localrun import gunicorn_command
from kube_client import KubeClient
from kube_dashboard import pages
from services.grants import definitions
from services.grants.audit import GENESIS, record_hash
from services.grants.calendar import WorkingCalendar, end_of_day
from services.grants.models import AuditRecord
from services.grants.programs import create_program
from services.grants.service import SERVICE as GRANTS
from services.notifications.defaults import TEMPLATES
from services.notifications.service import SERVICE as NOTIFICATIONS
from services.notifications.sms_text import sms_length
from services.notifications.templates import render
from services.registry.regions import load_regions
from services.registry.schemas import VISIT_TOPICS
from services.registry.service import SERVICE as REGISTRY
from shared.config import load_settings
from shared.encryption import DataKeys
from shared.migrate import upgrade
from shared.scope import NATIONWIDE
from shared.service import ServiceContext, build_context
from shared.timezones import zone_of
from shared.tokens import issue_token

ROOT = Path(__file__).resolve().parent.parent
REGION_FILE = ROOT.parent / "shared" / "data" / "wilayah-2025.csv"
SERVICES = (REGISTRY, GRANTS, NOTIFICATIONS)
# The issue's target for every page, and the province, regency and comparison region used.
TARGET_MS = 1000.0
PROVINCE, REGENCY, OTHER_PROVINCE = "64", "6472", "33"
AMOUNT_PER_MEMBER = 2_000_000
SETUP, BASELINE = "kube-bench-setup", "kube-bench-baseline"
DASHBOARD_TARGET = "kube_dashboard:create_app()"


# --- Options --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with every default documented in --help."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Smoke run (about 40 s): --groups 2000 --applications 2000 --messages 5000 "
        "--requests 5. The figures of a full run are in docs/performance.md.",
    )
    parser.add_argument(
        "--groups", type=int, default=100_000, help="groups in the registry (default %(default)s)"
    )
    parser.add_argument(
        "--members-per-group",
        type=int,
        default=5,
        help="members per group: a ketua, a sekretaris, a bendahara, the rest anggota "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--applications",
        type=int,
        default=100_000,
        help="grant applications, at most two per group (default %(default)s)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        default=200_000,
        help="about how many messages the notifications database holds (default %(default)s)",
    )
    parser.add_argument(
        "--province-share",
        type=float,
        default=0.3,
        help=f"share of the groups in province {PROVINCE}, the province whose office signs in; "
        "the rest are spread over every village of the country (default %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=20,
        help="measured requests per page, one after another, after the warm-ups "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--warmups", type=int, default=3, help="warm-up requests per page (default %(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="clients at once for the overview's concurrent run (default %(default)s)",
    )
    parser.add_argument(
        "--baseline-requests",
        type=int,
        default=500,
        help="requests to the bare Flask route, one after another (default %(default)s)",
    )
    parser.add_argument(
        "--gunicorn-workers",
        type=int,
        default=2,
        help="gunicorn sync workers of each API, the dashboard and the bare route "
        "(default %(default)s, as `make run`)",
    )
    parser.add_argument(
        "--regions",
        type=Path,
        default=REGION_FILE,
        help="Kemendagri region CSV (default %(default)s); synthetic codes when absent",
    )
    add_server_arguments(
        parser, redis="the run's keys carry their own prefix and are deleted at the end"
    )
    parser.add_argument(
        "--seed", type=int, default=2026, help="seed of the generated data (default %(default)s)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the databases and the logs afterwards (the processes still stop)",
    )
    args = parser.parse_args(argv)
    for name in ("groups", "applications", "requests", "concurrency", "gunicorn_workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.members_per_group < 3:
        parser.error("--members-per-group must be at least 3 (the three officers)")
    if not 0 <= args.province_share < 1:
        parser.error("--province-share must be at least 0 and below 1")
    return args


# --- Output ---------------------------------------------------------------------------------


@dataclass
class Report(NotificationsReport):
    """bench/notifications.py's report (comparisons, breakdowns and notes printed again at
    the end), keeping the data set's figures too."""

    data: list[tuple[str, str]] = field(default_factory=list)

    def figure(self, name: str, value: str) -> None:
        self.data.append((name, value))
        super().figure(name, value)


def seconds_since(started: float) -> str:
    return f"{time.perf_counter() - started:.1f} s"


# --- Processes ------------------------------------------------------------------------------


@dataclass
class Server:
    """A gunicorn serving one app on a loopback port, logging to a file."""

    name: str
    process: subprocess.Popen
    url: str
    log_path: Path


def start_server(
    name: str,
    target: str,
    env: dict[str, str],
    args: argparse.Namespace,
    log_dir: Path,
    stack: ExitStack,
    *,
    ready_path: str = "/readyz",
    cwd: Path = ROOT,
) -> Server:
    """`target` under gunicorn as `make run` starts it, stopped when `stack` closes."""
    port = free_port()
    command = gunicorn_command(target, f"127.0.0.1:{port}", workers=args.gunicorn_workers)
    log_path = log_dir / f"{name}.log"
    # A file, not a pipe: nobody reads a pipe during the run, and a full one blocks workers.
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT
        )
    stack.callback(stop_process, process)
    server = Server(name, process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_tail(log_path)}")
        try:
            if requests.get(server.url + ready_path, timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not ready in 60 s:\n{log_tail(log_path)}")
        time.sleep(0.2)


def delete_keys(redis_url: str, prefix: str) -> None:
    """Remove the run's Redis keys (the services' token-revocation checks read under it)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    except redis.RedisError as exc:
        print(f"    could not delete the run's Redis keys: {exc}", flush=True)
    finally:
        client.close()


# --- Setup ----------------------------------------------------------------------------------


@dataclass
class Setup:
    """What the setup prepared: databases, contexts, settings."""

    run_id: str
    urls: dict[str, str]  # service -> database URL
    contexts: dict[str, ServiceContext]
    env: dict[str, str]
    log_dir: Path
    facts: list[tuple[str, str]]

    def connect(self, service: str) -> psycopg.Connection:
        return psycopg.connect(psycopg_url(self.urls[service]))


def prepare(args: argparse.Namespace, stack: ExitStack, report: Report) -> Setup:
    """Three migrated databases, Redis, the environment, and a context per service."""
    run_id = uuid.uuid4().hex[:8]
    prefix = f"kubebench-{run_id}"
    server_url = postgres_server(args.database_url)
    redis_url = redis_server(args.redis_url, stack)
    stack.callback(delete_keys, redis_url, prefix)
    urls = {}
    for service in SERVICES:
        name = f"kube_bench_{run_id}_{service.name}"
        create_database(server_url, name, exist_ok=False)
        urls[service.name] = database_url(server_url, name)
        if args.keep:
            stack.callback(print, f"Kept the database: {urls[service.name]}")
        else:
            stack.callback(drop_database, server_url, name)
        upgrade(service.migrations, urls[service.name])
    print(f"    databases kube_bench_{run_id}_*, Redis key prefix {prefix}", flush=True)
    env = bench_environment(urls["registry"], redis_url, free_port(), run_id)
    env.update(
        {
            "GRANTS_DATABASE_URL": urls["grants"],
            "NOTIFICATIONS_DATABASE_URL": urls["notifications"],
            # The notification service needs a provider's settings to start; nothing here
            # sends a message.
            "SMS_PROVIDER": "http",
            "SMS_GATEWAY_URL": f"http://127.0.0.1:{free_port()}/sms",
            "SMS_GATEWAY_USERKEY": "bench-user",
            "SMS_GATEWAY_PASSKEY": "bench-pass",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(free_port()),
            "SMTP_SECURITY": "none",
            "SMTP_SENDER": "kube-bench@localhost",
        }
    )
    # Before the contexts are built: their settings are read from the environment, and the
    # gunicorn children inherit the same.
    os.environ.update(env)
    for service in SERVICES:
        key = f"{service.name.upper()}_DATABASE_URL"
        os.environ[key] = tagged_url(urls[service.name], SETUP)
    contexts = {}
    for service in SERVICES:
        contexts[service.name] = build_context(service, load_settings(service.name))
        stack.callback(contexts[service.name].db.dispose)
    # The contexts log INFO lines as JSON; here they would only interleave with the figures.
    logging.getLogger().setLevel(logging.WARNING)
    log_dir = Path(tempfile.mkdtemp(prefix="kube-bench-dashboard-"))
    if args.keep:
        stack.callback(print, f"Kept the logs: {log_dir}")
    else:
        stack.callback(shutil.rmtree, log_dir, ignore_errors=True)
    if os.getloadavg()[0] > 0.5:
        report.note(
            f"the 1-minute load average was {os.getloadavg()[0]:.2f} at the start: other work "
            "may be sharing the CPUs"
        )
    return Setup(run_id, urls, contexts, env, log_dir, machine_facts(contexts["registry"]))


# --- The registry: regions, groups, members ---------------------------------------------------


@dataclass(frozen=True)
class GroupRow:
    id: uuid.UUID
    name: str
    region_code: str
    status: str
    members: int


def weighted_villages(villages: list[str], share: float) -> list[str]:
    """The villages, those of PROVINCE repeated so that about `share` of uniform draws fall
    in it (bench/scale.py's generator draws uniformly)."""
    ours = [v for v in villages if v.startswith(PROVINCE)]
    if not ours or share <= len(ours) / len(villages):
        return villages
    repeat = round((share * len(villages) - len(ours)) / (len(ours) * (1 - share)))
    return villages + ours * repeat


def seed_registry(setup: Setup, args, report: Report) -> list[GroupRow]:
    """Regions, then groups and members by bench/scale.py's COPY generator; a few groups
    suspended, dissolved or still drafts, every group's address and bank account."""
    context = setup.contexts["registry"]
    regions = region_rows(args.regions, report)
    load_regions(context.db.engine, regions)
    villages = [r.code for r in regions if r.level == "village"]
    keys = DataKeys.parse((setup.env["KUBE_DATA_KEYS"],), setup.env["KUBE_LOOKUP_KEY"])
    members = args.groups * args.members_per_group
    shape = SimpleNamespace(members=members, members_per_group=args.members_per_group)
    generate(
        psycopg_url(setup.urls["registry"]),
        keys,
        weighted_villages(villages, args.province_share),
        shape,
        report,
    )
    started = time.perf_counter()
    with setup.connect("registry") as connection:
        # A status per group from its id: 2% suspended, 1% dissolved (their members no longer
        # count), 1% drafts; every group gets an address, a founding date and a bank account.
        connection.execute(
            """
            UPDATE groups SET
                status = CASE
                    WHEN abs(hashtext(id::text)) % 100 < 2 THEN 'suspended'
                    WHEN abs(hashtext(id::text)) % 100 < 3 THEN 'dissolved'
                    WHEN abs(hashtext(id::text)) % 100 < 4 THEN 'draft'
                    ELSE 'active' END,
                address = 'Jl. Merdeka No. ' || (1 + abs(hashtext(id::text)) % 200),
                founded_on = DATE '2015-01-01' + abs(hashtext(name)) % 3650,
                bank_name = (ARRAY['BRI', 'BNI', 'Bank Mandiri', 'Bankaltimtara', 'Bank Jateng'])
                    [1 + abs(hashtext(name)) % 5],
                bank_account_number = lpad((abs(hashtext(id::text || 'rek'))::bigint
                    * 1000 + 7)::text, 15, '0'),
                bank_account_holder = name
            """
        )
        connection.execute(
            """
            UPDATE groups SET version = 2, status_reason = 'Kelompok tidak aktif lagi.'
            WHERE status IN ('suspended', 'dissolved')
            """
        )
        connection.execute(
            """
            UPDATE members m SET active = false, version = 2 FROM groups g
            WHERE g.id = m.group_id AND g.status = 'dissolved'
            """
        )
        connection.commit()
        rows = connection.execute(
            """
            SELECT g.id, g.name, g.region_code, g.status,
                   count(m.id) FILTER (WHERE m.active)
            FROM groups g LEFT JOIN members m ON m.group_id = g.id
            GROUP BY g.id
            """
        ).fetchall()
    report.figure("Group statuses and bank accounts set", seconds_since(started))
    groups = [GroupRow(*row) for row in rows]
    groups.sort(key=lambda g: g.id)  # the order of the generated data, whatever the plan
    statuses = Counter(g.status for g in groups)
    in_province = sum(g.region_code.startswith(PROVINCE) for g in groups)
    report.figure(
        "Groups",
        f"{len(groups):,} ({dict(statuses)}); {in_province:,} in province {PROVINCE}, "
        f"{sum(g.region_code.startswith(OTHER_PROVINCE) for g in groups):,} in "
        f"{OTHER_PROVINCE}",
    )
    return groups


# --- Grants: programmes, applications and their histories --------------------------------------

# The forward path of each route, and who takes each step.
FORWARD = {
    "draft": ("submit", "pendamping", "submitted"),
    "submitted": ("verify", "verifikator", "verified"),
    "recommended": ("approve", "kepala_dinas", "approved"),
    "approved": ("disburse", "bendahara", "disbursed"),
    "disbursed": ("report", "pendamping", "reported"),
    "reported": ("accept_report", "verifikator", "report_accepted"),
    "report_accepted": ("monitor", "pendamping", "monitored"),
    "monitored": ("close", "kepala_dinas", "closed"),
}
ROUTE_STAGES = {
    "national": (
        "draft", "submitted", "verified", "recommended", "approved", "disbursed", "reported",
        "report_accepted", "monitored", "closed",
    ),
    "regional": (
        "draft", "submitted", "verified", "approved", "disbursed", "reported",
        "report_accepted", "monitored", "closed",
    ),
}  # fmt: skip
# Where this year's and last year's applications stand (weights, in percent).
STAGES_NOW = {
    "draft": 5, "submitted": 9, "verified": 9, "recommended": 5, "approved": 10,
    "disbursed": 22, "reported": 6, "report_accepted": 8, "monitored": 5, "closed": 8,
    "rejected": 8, "cancelled": 5,
}  # fmt: skip
STAGES_LAST_YEAR = {
    "closed": 50, "monitored": 10, "report_accepted": 8, "reported": 2, "disbursed": 8,
    "rejected": 15, "cancelled": 7,
}  # fmt: skip
# Days a step usually waits after the one before it (low, high).
STEP_DAYS = {
    "submit": (0, 10), "verify": (2, 20), "recommend": (3, 20), "approve": (5, 40),
    "disburse": (5, 60), "report": (30, 120), "accept_report": (2, 20), "monitor": (10, 60),
    "close": (10, 60), "return": (3, 15), "return_report": (3, 15), "reject": (2, 20),
    "cancel": (1, 15),
}  # fmt: skip
# Days since an application entered its stage (low, high): deadlines of 10 working days, and
# the usage report due 90 days after the transfer, so some of each are overdue.
WAITING_DAYS = {
    "submitted": (0, 25), "verified": (0, 25), "recommended": (0, 25), "disbursed": (0, 130),
    "reported": (0, 20), "draft": (0, 60), "approved": (0, 45), "report_accepted": (0, 60),
    "monitored": (0, 60),
}  # fmt: skip
GRANT_COLUMNS = (
    "id", "program_id", "group_id", "group_name", "region_code", "amount", "business_plan",
    "requested_items", "documents", "stage", "workflow_key", "workflow_version", "version",
    "stage_entered_at", "due_at", "created_by", "submitted_by", "verified_by", "approved_by",
    "decree_number", "transfer_reference", "transfer_date", "disbursed_amount", "last_comment",
    "created_at", "updated_at",
)  # fmt: skip
AUDIT_COLUMNS = (
    "grant_id", "seq", "actor", "role", "action", "from_stage", "to_stage", "comment", "data",
    "at", "request_id", "workflow_key", "workflow_version", "prev_hash", "hash",
)  # fmt: skip
RETURN_REASONS = (
    "Foto tempat usaha belum jelas.",
    "Fotokopi KK anggota belum lengkap.",
    "Rencana usaha belum mencantumkan harga bahan.",
)
REJECT_REASONS = (
    "Anggota sudah pernah menerima bantuan KUBE.",
    "Kelompok tidak aktif saat verifikasi lapangan.",
)


@dataclass(frozen=True)
class ProgramPlan:
    key: str
    name: str
    fiscal_year: int
    funding_source: str
    region_code: str | None


PROGRAMS = (
    ProgramPlan("apbn-2025", "UEP KUBE Nasional 2025", 2025, "apbn", None),
    ProgramPlan("apbn-2026", "UEP KUBE Nasional 2026", 2026, "apbn", None),
    ProgramPlan("kaltim-2026", "UEP KUBE Kalimantan Timur 2026", 2026, "apbd_province", "64"),
    ProgramPlan("jateng-2026", "UEP KUBE Jawa Tengah 2026", 2026, "apbd_province", "33"),
    ProgramPlan("samarinda-2026", "UEP KUBE Kota Samarinda 2026", 2026, "apbd_regency", "6472"),
)


@dataclass
class Step:
    action: str
    role: str
    source: str | None
    target: str
    at: datetime
    comment: str | None = None
    data: dict = field(default_factory=dict)


@dataclass
class Application:
    id: uuid.UUID
    program: dict  # id, key, workflow_key, report_due_days
    group: GroupRow
    amount: int
    steps: list[Step]

    @property
    def stage(self) -> str:
        return self.steps[-1].target


@dataclass
class GrantData:
    """What the grants seeding made, for the registry's and notifications' share."""

    applications: list[Application]
    programs: dict[str, dict]


def actor_of(role: str, region_code: str, workflow_key: str, action: str) -> str:
    """Who in which office takes a step (an approver never verified the same application)."""
    if role == "kepala_dinas" and action == "approve" and workflow_key == "national":
        return "direktur-kemensos"
    office = region_code[:2] if role in ("kepala_dinas", "bendahara") else region_code[:4]
    return f"{role.replace('_', '-')}-{office}"


def plan_path(workflow: str, final: str, rng: random.Random) -> list[tuple[str, str, str, str]]:
    """The steps (action, role, from, to) from creation to `final` on `workflow`'s route."""
    stages = ROUTE_STAGES[workflow]
    if final == "recommended" and workflow != "national":
        final = "verified"
    path: list[tuple[str, str, str | None, str]] = [("create", "pendamping", None, "draft")]
    if final == "cancelled":
        if rng.random() < 0.4:
            path.append(("submit", "pendamping", "draft", "submitted"))
        path.append(("cancel", "pendamping", path[-1][3], "cancelled"))
        return path
    rejected_at = None
    if final == "rejected":
        rejected_at = rng.choices(("submitted", "verified", "approved"), (50, 35, 15))[0]
        final = rejected_at
    returned = False
    report_returned = False
    while path[-1][3] != final:
        stage = path[-1][3]
        if stage == "submitted" and not returned and rng.random() < 0.12:
            returned = True
            path.append(("return", "verifikator", "submitted", "draft"))
            continue
        if stage == "reported" and not report_returned and rng.random() < 0.08:
            report_returned = True
            path.append(("return_report", "verifikator", "reported", "disbursed"))
            continue
        if stage == "verified":
            following = stages[stages.index("verified") + 1]
            action = "recommend" if following == "recommended" else "approve"
            path.append((action, "kepala_dinas", "verified", following))
            continue
        action, role, target = FORWARD[stage]
        path.append((action, role, stage, target))
    if rejected_at is not None:
        role = "verifikator" if rejected_at == "submitted" else "kepala_dinas"
        path.append(("reject", role, rejected_at, "rejected"))
    return path


def step_data(action: str, amount: int, at: datetime, region: str, rng, checklist) -> dict:
    """An action's data as its schema loads it and the history stores it (dates as text)."""
    day = at.astimezone(zone_of(region)).date().isoformat()
    number = rng.randint(1, 9999)
    if action == "create":
        return {"amount": amount}
    if action == "verify":
        return {"checklist": checklist, "minutes_number": f"BA-{number}/VERVAL/{day[:4]}"}
    if action == "recommend":
        return {"letter_number": f"460/{number}/DINSOS-{region[:2]}"}
    if action == "approve":
        return {"decree_number": f"SK-460/{number % 50}/UEP/{day[:4]}", "decree_date": day}
    if action == "disburse":
        reference = f"TRF{day.replace('-', '')}{number:05d}"
        return {"transfer_reference": reference, "transfer_date": day, "amount": amount}
    if action == "report":
        spent = amount - rng.randint(0, 20) * 50_000
        return {"spent_amount": spent, "report_date": day, "receipts": rng.randint(5, 60)}
    if action == "monitor":
        status = rng.choices(("running", "growing", "stalled", "stopped"), (50, 30, 15, 5))[0]
        return {"business_status": status, "visit_date": day, "findings": None}
    return {}


def timed_steps(path, final_stage: str, last_year: bool, now: datetime, rng) -> list[datetime]:
    """When each step of `path` happened: gaps as offices take them, the last one so long ago
    that the application has waited in its stage as open applications do."""
    gaps = [0.0] + [
        rng.uniform(*STEP_DAYS[action]) + rng.random() for action, *_ in path[1:]
    ]  # fmt: skip
    if last_year:
        waited = rng.uniform(270, 600)
    elif final_stage in WAITING_DAYS:
        waited = rng.uniform(*WAITING_DAYS[final_stage])
    else:
        waited = rng.uniform(0, 300)
    at = now - timedelta(days=waited + sum(gaps), seconds=rng.randint(60, 3600))
    times = []
    for gap in gaps:
        at += timedelta(days=gap)
        # Offices work in the daytime: keep the hour, move the minutes around.
        times.append(at.replace(minute=rng.randint(0, 59), second=rng.randint(0, 59)))
    return sorted(times)


def create_programs(setup: Setup) -> dict[str, dict]:
    """The programmes through the grant service's own domain function (budgets set later from
    what their applications committed)."""
    made = {}
    context = setup.contexts["grants"]
    with context.db.transaction() as session:
        for plan in PROGRAMS:
            program = create_program(
                session,
                {
                    "name": plan.name,
                    "fiscal_year": plan.fiscal_year,
                    "funding_source": plan.funding_source,
                    "region_code": plan.region_code,
                    "total_budget": 0,
                    "amount_rule": "per_member",
                    "amount": AMOUNT_PER_MEMBER,
                    "min_members": 3,
                    "max_members": 20,
                    "report_due_days": 90,
                    "status": "open",
                },
                scope=NATIONWIDE,
                actor="admin-bench",
            )
            made[plan.key] = {
                "id": program.id,
                "key": plan.key,
                "workflow_key": program.workflow_key,
                "report_due_days": program.report_due_days,
                "plan": plan,
            }
    return made


def programs_for(group: GroupRow, programs: dict[str, dict]) -> list[dict]:
    """This year's programmes a group's region takes part in."""
    keys = ["apbn-2026"]
    if group.region_code.startswith("64"):
        keys.append("kaltim-2026")
    if group.region_code.startswith("33"):
        keys.append("jateng-2026")
    if group.region_code.startswith("6472"):
        keys.append("samarinda-2026")
    return [programs[k] for k in keys]


def plan_applications(groups, programs, count: int, now: datetime, rng) -> list[Application]:
    """`count` applications: one this year for about three groups in four, and one of last
    year's national programme for some of them."""
    eligible = [g for g in groups if g.status in ("active", "suspended")]
    rng.shuffle(eligible)
    if count > 2 * len(eligible):
        raise SystemExit(f"--applications {count:,} is over two per group ({len(eligible):,})")
    first = min(len(eligible), round(count * 0.75))
    second = count - first
    choices = [(g, rng.choice(programs_for(g, programs)), False) for g in eligible[:first]]
    choices += [(g, programs["apbn-2025"], True) for g in eligible[:second]]
    made = []
    for group, program, last_year in choices:
        weights = STAGES_LAST_YEAR if last_year else STAGES_NOW
        final = rng.choices(list(weights), list(weights.values()))[0]
        path = plan_path(program["workflow_key"], final, rng)
        times = timed_steps(path, path[-1][3], last_year, now, rng)
        amount = AMOUNT_PER_MEMBER * group.members
        steps = [
            Step(action, role, source, target, at)
            for (action, role, source, target), at in zip(path, times, strict=True)
        ]
        made.append(Application(uuid.uuid4(), program, group, amount, steps))
    return made


def seed_grants(setup: Setup, groups: list[GroupRow], args, report: Report) -> GrantData:
    """The groups' projection (as the registry's events leave it), programmes, applications
    with their histories, and the budget ledger; then each programme's counters and budget."""
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with setup.connect("registry") as source, setup.connect("grants") as target:
        # What apply_group_snapshot keeps of each group's latest snapshot.
        copy_between(
            source,
            """
            SELECT g.id, g.version, g.name, g.region_code, g.status, g.business_type,
                   count(m.id) FILTER (WHERE m.active),
                   coalesce(jsonb_object_agg(m.role, jsonb_build_object(
                       'member_id', m.id::text, 'name', m.name))
                       FILTER (WHERE m.active AND m.role <> 'anggota'), '{}'),
                   jsonb_build_object('bank_name', g.bank_name,
                       'account_number', g.bank_account_number,
                       'account_holder', g.bank_account_holder),
                   now()
            FROM groups g LEFT JOIN members m ON m.group_id = g.id
            GROUP BY g.id
            """,
            target,
            "group_projections (id, version, name, region_code, status, business_type, "
            "member_count, officers, bank_account, updated_at)",
        )
        target.commit()
    report.figure("Group projections copied", seconds_since(started))
    programs = create_programs(setup)
    started = time.perf_counter()
    applications = plan_applications(groups, programs, args.applications, now, rng)
    report.figure("Applications planned", f"{len(applications):,} in {seconds_since(started)}")
    started = time.perf_counter()
    with setup.contexts["grants"].db.transaction() as session:
        calendar = WorkingCalendar.load(session)
        routes = {key: definitions.route(session, key, 1) for key in ("national", "regional")}
    grant_rows, audit_rows, movements = [], [], []
    for application in applications:
        grant, records, moves = application_rows(application, routes, calendar, now, rng)
        grant_rows.append(grant)
        audit_rows.extend(records)
        movements.extend(moves)
    report.figure(
        "Application rows and hash-chained histories built",
        f"{len(grant_rows):,} applications, {len(audit_rows):,} history records in "
        f"{seconds_since(started)}",
    )
    started = time.perf_counter()
    with setup.connect("grants") as connection:
        with connection.cursor() as cursor:
            copy_rows(cursor, f"grants ({', '.join(GRANT_COLUMNS)})", grant_rows)
            copy_rows(cursor, f"grant_audit ({', '.join(AUDIT_COLUMNS)})", audit_rows)
            copy_rows(
                cursor, "budget_movements (program_id, grant_id, kind, amount, at)", movements
            )
        # Each programme's counters as its ledger adds them up, and a budget a fifth above.
        connection.execute(
            """
            UPDATE programs p SET
                reserved = l.reserved, disbursed = l.disbursed,
                total_budget = ceil((l.reserved + l.disbursed) * 1.2 / 1e8) * 1e8 + 1e8
            FROM (SELECT program_id,
                         sum(CASE kind WHEN 'reserve' THEN amount ELSE -amount END) AS reserved,
                         coalesce(sum(amount) FILTER (WHERE kind = 'disburse'), 0) AS disbursed
                  FROM budget_movements GROUP BY program_id) AS l
            WHERE l.program_id = p.id
            """
        )
        connection.execute("UPDATE programs SET total_budget = 1e9 WHERE total_budget = 0")
        connection.commit()
    report.figure(
        "Applications, histories and budget movements written (COPY)",
        f"{len(grant_rows) + len(audit_rows) + len(movements):,} rows in {seconds_since(started)}",
    )
    stages = Counter(a.stage for a in applications)
    report.figure("Applications by stage", ", ".join(f"{s} {n:,}" for s, n in stages.items()))
    return GrantData(applications, programs)


def application_rows(application: Application, routes, calendar, now, rng):
    """The application's row, its history records (chained by hash) and budget movements,
    as the grant service's transitions leave them."""
    program, group = application.program, application.group
    region, amount = group.region_code, application.amount
    route = routes[program["workflow_key"]]
    checklist = dict.fromkeys(route.documents, True)
    grant = {
        "id": application.id,
        "program_id": program["id"],
        "group_id": group.id,
        "group_name": group.name,
        "region_code": region,
        "amount": amount,
        "business_plan": f"Usaha {group.name}: modal kerja dan peralatan produksi.",
        "requested_items": "[]",
        "documents": json.dumps(checklist),
        "workflow_key": route.key,
        "workflow_version": route.version,
        "submitted_by": None,
        "verified_by": None,
        "approved_by": None,
        "decree_number": None,
        "transfer_reference": None,
        "transfer_date": None,
        "disbursed_amount": None,
        "last_comment": None,
    }
    records, movements = [], []
    previous = GENESIS
    for seq, taken in enumerate(application.steps, 1):
        actor = actor_of(taken.role, region, route.key, taken.action)
        if taken.action == "create":
            grant["created_by"] = actor
        if taken.action in ("return", "return_report"):
            taken.comment = rng.choice(RETURN_REASONS)
        elif taken.action == "reject":
            taken.comment = rng.choice(REJECT_REASONS)
        taken.data = step_data(taken.action, amount, taken.at, region, rng, checklist)
        if taken.action == "submit":
            grant["submitted_by"] = actor
        elif taken.action == "verify":
            grant["verified_by"] = actor
        elif taken.action == "approve":
            grant["approved_by"] = actor
            grant["decree_number"] = taken.data["decree_number"]
            movements.append((program["id"], application.id, "reserve", amount, taken.at))
        elif taken.action == "disburse":
            grant["transfer_reference"] = taken.data["transfer_reference"]
            grant["transfer_date"] = taken.data["transfer_date"]
            grant["disbursed_amount"] = amount
            movements.append((program["id"], application.id, "disburse", amount, taken.at))
        elif taken.action == "reject" and taken.source == "approved":
            movements.append((program["id"], application.id, "release", amount, taken.at))
        if taken.action != "create":
            grant["last_comment"] = taken.comment
        record = SimpleNamespace(
            grant_id=application.id,
            seq=seq,
            actor=actor,
            role=taken.role,
            action=taken.action,
            from_stage=taken.source,
            to_stage=taken.target,
            comment=taken.comment,
            data=taken.data,
            at=taken.at,
            request_id=None,
            workflow_key=route.key,
            workflow_version=route.version,
            prev_hash=previous,
        )
        previous = record_hash(record)
        records.append(
            (
                application.id, seq, actor, taken.role, taken.action, taken.source, taken.target,
                taken.comment, json.dumps(taken.data), taken.at, None, route.key, route.version,
                record.prev_hash, previous,
            )
        )  # fmt: skip
    last = application.steps[-1]
    grant["stage"] = last.target
    grant["version"] = len(application.steps)
    grant["stage_entered_at"] = last.at
    grant["due_at"] = due_at(route, last.target, last.at, grant, program, calendar)
    grant["created_at"] = application.steps[0].at
    grant["updated_at"] = last.at
    return tuple(grant[c] for c in GRANT_COLUMNS), records, movements


def due_at(route, stage: str, entered: datetime, grant: dict, program: dict, calendar):
    """The stage's due time as the grant service sets it on entering the stage."""
    deadline = route.deadlines.get(stage)
    if deadline is None or stage in ("closed", "rejected", "cancelled"):
        return None
    region = grant["region_code"]
    if deadline.report_due:
        transfer = date.fromisoformat(grant["transfer_date"])
        return end_of_day(transfer + timedelta(days=program["report_due_days"]), region)
    return calendar.due_at(entered, deadline.working_days, region)


# --- The registry again: the paid grants it heard of, and mentoring visits -------------------


def seed_registry_follow_up(setup: Setup, groups, grants: GrantData, args, report) -> None:
    """Each paid grant as the registry records `grant.disbursed`, and mentoring visits: groups
    with a paid grant visited before and after the money, and some others now and then."""
    rng = random.Random(args.seed + 1)
    today = datetime.now(UTC).date()
    paid: dict[uuid.UUID, date] = {}
    disbursements = []
    for application in grants.applications:
        for taken in application.steps:
            if taken.action == "disburse":
                day = date.fromisoformat(taken.data["transfer_date"])
                disbursements.append((application.id, application.group.id, day, taken.at))
                group_id = application.group.id
                paid[group_id] = min(day, paid.get(group_id, day))
    visits = []
    for group in groups:
        if group.status in ("dissolved", "draft"):
            continue
        base = rng.randint(8, 40) * 100_000
        first_paid = paid.get(group.id)
        if first_paid is not None:
            days = [first_paid - timedelta(days=rng.randint(0, 180)) for _ in range(2)]
            after = max((today - first_paid).days, 1)
            days += [
                first_paid + timedelta(days=rng.randint(1, after))
                for _ in range(rng.randint(1, 4))
            ]  # fmt: skip
        elif rng.random() < 0.35:
            days = [today - timedelta(days=rng.randint(0, 400)) for _ in range(rng.randint(1, 3))]
        else:
            continue
        for day in sorted(days):
            grown = first_paid is not None and day > first_paid
            revenue = round(base * (rng.uniform(0.9, 1.6) if grown else rng.uniform(0.8, 1.1)))
            topics = sorted(set(rng.sample(VISIT_TOPICS, rng.randint(1, 2))))
            visits.append(
                (
                    uuid.uuid4(),
                    group.id,
                    day,
                    "{" + ",".join(topics) + "}",
                    None if rng.random() < 0.7 else "Pembukuan harian sudah rapi.",
                    None if rng.random() < 0.05 else revenue // 1000 * 1000,
                    f"pendamping-{group.region_code[:4]}",
                    datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=3),
                )
            )
    started = time.perf_counter()
    with setup.connect("registry") as connection:
        with connection.cursor() as cursor:
            copy_rows(
                cursor,
                "grant_disbursements (grant_id, group_id, disbursed_on, recorded_at)",
                disbursements,
            )
            copy_rows(
                cursor,
                "visits (id, group_id, visited_on, topics, notes, monthly_revenue, pendamping, "
                "created_at)",
                visits,
            )
        connection.commit()
    visited = len({v[1] for v in visits})
    report.figure(
        "Registry: paid grants and mentoring visits written (COPY)",
        f"{len(disbursements):,} paid grants, {len(visits):,} visits to {visited:,} groups in "
        f"{seconds_since(started)}",
    )


# --- Notifications: contacts, opt-outs, messages ----------------------------------------------

# The default rules' events (services/notifications/defaults.py): which step makes which event
# and template, and whether it is critical.
MESSAGE_EVENTS = {
    "submit": ("grant.stage_changed", "grant.submitted", False),
    "return": ("grant.stage_changed", "grant.returned", False),
    "approve": ("grant.stage_changed", "grant.approved", False),
    "disburse": ("grant.disbursed", "grant.disbursed", True),
    "accept_report": ("grant.stage_changed", "grant.report_accepted", False),
}
REPORT_DUE_NOTICE_DAYS = 7


def message_events(grants: GrantData, now: datetime) -> list[tuple]:
    """Every message-making event of the applications' histories, with its rendered SMS: a
    step the rules tell the group about, or the usage report's reminder before it is due."""
    events = []
    for application in grants.applications:
        for taken in application.steps:
            found = MESSAGE_EVENTS.get(taken.action)
            if found is not None:
                events.append((application, taken, *found, taken.at))
        for taken in application.steps:
            if taken.action == "disburse":
                due = date.fromisoformat(taken.data["transfer_date"]) + timedelta(
                    days=application.program["report_due_days"] - REPORT_DUE_NOTICE_DAYS
                )
                at = datetime.combine(due, datetime.min.time(), UTC) + timedelta(hours=1)
                if at < now:
                    events.append((application, taken, "grant.report_due", "grant.report_due",
                                   False, at))  # fmt: skip
    return events


def event_rows(events: list[tuple], share: float, rng) -> list[tuple]:
    """A share of the events, each as the staging row its messages are made from."""
    rows = []
    for application, taken, event_type, template_key, critical, at in events:
        if rng.random() >= share:
            continue
        group = application.group
        data = {
            "group_name": group.name,
            "amount": application.amount,
            "reason": taken.comment or "",
            "transfer_date": taken.data.get("transfer_date", ""),
            "transfer_reference": taken.data.get("transfer_reference", ""),
            "due_at": "",
            "member_name": "",
        }
        if template_key == "grant.report_due":
            data["due_at"] = (at.date() + timedelta(days=REPORT_DUE_NOTICE_DAYS)).isoformat()
        subject, body = TEMPLATES[(template_key, "sms", "id")]
        _, text = render(body, subject, data, language="id", region_code=group.region_code)
        encoding, _, parts = sms_length(text)
        created = at + timedelta(seconds=rng.randint(1, 20))
        rows.append(
            (
                uuid.uuid4(), event_type, template_key, critical, group.id, application.id,
                group.region_code, created, text, encoding, parts,
            )
        )  # fmt: skip
    return rows


def seed_notifications(setup: Setup, grants: GrantData, args, report: Report) -> None:
    """Groups and contacts as the registry's snapshots leave them, opt-outs, and the messages
    the default rules made of the applications' steps: a sample of the events, so the table
    holds about --messages rows, each message's status as delivery left it."""
    rng = random.Random(args.seed + 2)
    now = datetime.now(UTC)
    started = time.perf_counter()
    with setup.connect("registry") as source, setup.connect("notifications") as target:
        copy_between(
            source,
            "SELECT id, version, name, region_code, status, now() FROM groups",
            target,
            "recipient_groups (id, version, name, region_code, status, updated_at)",
        )
        copy_between(
            source,
            "SELECT id, group_id, name, role, phone, email, language FROM members WHERE active",
            target,
            "contacts (member_id, group_id, name, role, phone, email, language)",
        )
        # About one member in seventy asked for no more SMS, and some numbers are no member's.
        target.execute(
            """
            INSERT INTO opt_outs (phone, source, created_by, created_at)
            SELECT phone, CASE WHEN abs(hashtext(phone)) % 3 = 0 THEN 'api' ELSE 'keyword:http'
                          END, NULL, now() - (abs(hashtext(phone)) % 300) * interval '1 day'
            FROM contacts WHERE phone IS NOT NULL AND abs(hashtext(phone || 'stop')) % 70 = 0
            UNION
            SELECT '+62812' || lpad(n::text, 8, '0'), 'keyword:http', NULL, now()
            FROM generate_series(1, 200) AS n
            ON CONFLICT DO NOTHING
            """
        )
        target.commit()
        contacts = target.execute("SELECT count(*) FROM contacts").fetchone()[0]
    report.figure("Notifications: groups and contacts copied, opt-outs", seconds_since(started))
    started = time.perf_counter()
    events = message_events(grants, now)
    per_event = max(args.members_per_group, 1)
    share = min(1.0, args.messages / max(len(events) * per_event, 1))
    rows = event_rows(events, share, rng)
    report.figure(
        "Message events",
        f"{len(events):,} in the histories, {len(rows):,} ({share:.0%}) made into messages; "
        f"rendered in {seconds_since(started)}",
    )
    started = time.perf_counter()
    with setup.connect("notifications") as connection:
        connection.execute(
            """
            CREATE TEMPORARY TABLE bench_events (
                event_id uuid, event_type text, template_key text, critical boolean,
                group_id uuid, grant_id uuid, region_code text, created_at timestamptz,
                body text, encoding text, sms_parts integer)
            """
        )
        with connection.cursor() as cursor:
            copy_rows(cursor, "bench_events", rows)
        # A message per member with a phone; its status as delivery left it: older ones
        # delivered, sent (no delivery report) or failed, the last day's partly still queued.
        connection.execute(
            """
            INSERT INTO messages (
                id, event_id, event_type, recipient_key, recipient, recipient_name, channel,
                template_id, template_version, language, subject, body, encoding, sms_parts,
                critical, status, attempts, provider, provider_message_id, last_error,
                group_id, grant_id, broadcast_id, region_code, send_after, dispatched_at,
                created_at, updated_at, sent_at, delivered_at, failed_at)
            SELECT gen_random_uuid(), m.event_id, m.event_type, m.recipient_key, m.recipient,
                   m.recipient_name, 'sms', m.template_id, m.template_version, 'id', NULL,
                   m.body, m.encoding, m.sms_parts, m.critical, m.status,
                   CASE WHEN m.status IN ('queued') THEN 0 ELSE 1 END,
                   CASE WHEN m.status = 'queued' THEN NULL ELSE 'http' END,
                   CASE WHEN m.status IN ('sent', 'delivered')
                        THEN 'gw-' || left(md5(m.event_id::text || m.recipient_key), 16) END,
                   CASE WHEN m.status = 'failed' THEN 'HTTP 500 from the SMS gateway' END,
                   m.group_id, m.grant_id, NULL, m.region_code, m.created_at, m.created_at,
                   m.created_at,
                   m.created_at + CASE m.status WHEN 'delivered' THEN interval '40 seconds'
                                                WHEN 'queued' THEN interval '0' ELSE
                                                interval '3 seconds' END,
                   CASE WHEN m.status IN ('sent', 'delivered', 'sending')
                        THEN m.created_at + interval '2 seconds' END,
                   CASE WHEN m.status = 'delivered' THEN m.created_at + interval '40 seconds' END,
                   CASE WHEN m.status = 'failed' THEN m.created_at + interval '3 seconds' END
            FROM (
                SELECT e.*, c.member_id::text AS recipient_key, c.phone AS recipient,
                       c.name AS recipient_name, t.id AS template_id,
                       t.version AS template_version,
                       CASE WHEN e.created_at > now() - interval '1 day' THEN
                            CASE WHEN x.r < 200 THEN 'queued' WHEN x.r < 250 THEN 'sending'
                                 WHEN x.r < 650 THEN 'sent' WHEN x.r < 950 THEN 'delivered'
                                 ELSE 'failed' END
                       ELSE CASE WHEN x.r < 780 THEN 'delivered' WHEN x.r < 910 THEN 'sent'
                                 WHEN x.r < 990 THEN 'failed' ELSE 'queued' END
                       END AS status
                FROM bench_events e
                JOIN contacts c ON c.group_id = e.group_id AND c.phone IS NOT NULL
                LEFT JOIN templates t
                  ON t.key = e.template_key AND t.channel = 'sms' AND t.language = 'id'
                CROSS JOIN LATERAL (
                    SELECT abs(hashtext(c.member_id::text || e.event_id::text)) % 1000 AS r
                ) AS x
            ) AS m
            """
        )
        connection.commit()
        by_status = dict(
            connection.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall()
        )
    report.figure(
        "Notifications: messages written (INSERT ... SELECT)",
        f"{sum(by_status.values()):,} ({by_status}) to {contacts:,} contacts in "
        f"{seconds_since(started)}",
    )


# --- Bulk helpers ---------------------------------------------------------------------------


def copy_rows(cursor: psycopg.Cursor, table: str, rows: list[tuple]) -> None:
    """COPY `rows` into `table` (with its column list)."""
    with cursor.copy(f"COPY {table} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def copy_between(source: psycopg.Connection, query: str, target: psycopg.Connection, table):
    """Stream a query's rows from one database into a table of another, COPY to COPY."""
    with (
        source.cursor() as out_cursor,
        target.cursor() as in_cursor,
        out_cursor.copy(f"COPY ({query}) TO STDOUT") as out,
        in_cursor.copy(f"COPY {table} FROM STDIN") as into,
    ):
        for chunk in out:
            into.write(chunk)


def vacuum_analyze(setup: Setup, report: Report) -> None:
    """What autovacuum does after a bulk load, done now, so no page depends on when it runs;
    then the size of each database."""
    started = time.perf_counter()
    sizes = []
    for service in SERVICES:
        with setup.connect(service.name) as connection:
            connection.autocommit = True
            connection.execute("VACUUM (ANALYZE)")
            size = connection.execute(
                "SELECT pg_size_pretty(pg_database_size(current_database()))"
            ).fetchone()[0]
            sizes.append(f"{service.name} {size}")
    report.figure("VACUUM (ANALYZE)", f"{seconds_since(started)}; sizes: {', '.join(sizes)}")


def check_trail(setup: Setup, grants: GrantData, args, report: Report) -> None:
    """A sample of the applications' history chains re-hashed as `kube grants verify-audit`
    checks them (record by record, each following the one before, the last where the
    application stands), and every programme's counters against its ledger."""
    started = time.perf_counter()
    sample = random.Random(args.seed + 4).sample(
        grants.applications, min(2000, len(grants.applications))
    )
    stages = {a.id: a.stage for a in sample}
    broken = 0
    with setup.contexts["grants"].db.transaction() as session:
        records = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.grant_id.in_(list(stages)))
            .order_by(AuditRecord.grant_id, AuditRecord.seq)
        ).all()
        chains: dict[uuid.UUID, list[AuditRecord]] = {}
        for record in records:
            chains.setdefault(record.grant_id, []).append(record)
        for grant_id, chain in chains.items():
            previous = GENESIS
            for seq, record in enumerate(chain, 1):
                if (record.seq, record.prev_hash, record_hash(record)) != (
                    seq,
                    previous,
                    record.hash,
                ):
                    broken += 1
                    break
                previous = record.hash
            else:
                broken += chain[-1].to_stage != stages[grant_id]
        broken += len(stages) - len(chains)
    with setup.connect("grants") as connection:
        unequal = connection.execute(
            """
            SELECT count(*) FROM programs p LEFT JOIN (
                SELECT program_id,
                       sum(CASE kind WHEN 'reserve' THEN amount ELSE -amount END) AS reserved,
                       coalesce(sum(amount) FILTER (WHERE kind = 'disburse'), 0) AS disbursed
                FROM budget_movements GROUP BY program_id) AS l ON l.program_id = p.id
            WHERE (p.reserved, p.disbursed) <> (coalesce(l.reserved, 0), coalesce(l.disbursed, 0))
            """
        ).fetchone()[0]
    report.figure(
        "Checks",
        f"{broken} broken history chains of {len(stages):,} re-hashed ({len(records):,} "
        f"records), {unequal} programmes whose counters differ from their ledger "
        f"({seconds_since(started)})",
    )
    if broken or unequal:
        report.note("the generated grants data is not what the grant service would store")


def table_counts(setup: Setup, report: Report) -> None:
    """How many rows the pages read from, per table."""
    tables = {
        "registry": ("groups", "members", "visits", "grant_disbursements", "regions"),
        "grants": ("group_projections", "programs", "grants", "grant_audit", "budget_movements"),
        "notifications": ("recipient_groups", "contacts", "messages", "opt_outs"),
    }
    for service, names in tables.items():
        with setup.connect(service) as connection:
            counts = [
                f"{name} {connection.execute(f'SELECT count(*) FROM {name}').fetchone()[0]:,}"  # noqa: S608
                for name in names
            ]
        report.figure(f"Rows in {service}", ", ".join(counts))


# --- Servers and sign-in --------------------------------------------------------------------


@dataclass
class Servers:
    registry: Server
    grants: Server
    notifications: Server
    dashboard: Server
    baseline: Server

    def all(self) -> list[Server]:
        return [self.registry, self.grants, self.notifications, self.dashboard, self.baseline]

    def api_urls(self) -> dict[str, str]:
        return {
            "registry": self.registry.url,
            "grants": self.grants.url,
            "notifications": self.notifications.url,
        }


def start_servers(setup: Setup, args, stack: ExitStack) -> Servers:
    """The three APIs, the dashboard and the bare route under gunicorn."""
    apis = {}
    for service in SERVICES:
        key = f"{service.name.upper()}_DATABASE_URL"
        env = {key: tagged_url(setup.urls[service.name], f"kube-bench-{service.name}")}
        apis[service.name] = start_server(
            service.name, app_target(service.name), env, args, setup.log_dir, stack
        )
    dashboard = start_server(
        "dashboard",
        DASHBOARD_TARGET,
        {
            "DASHBOARD_SECRET_KEY": secrets.token_hex(32),
            "REGISTRY_URL": apis["registry"].url,
            "GRANTS_URL": apis["grants"].url,
            "NOTIFICATIONS_URL": apis["notifications"].url,
        },
        args,
        setup.log_dir,
        stack,
        ready_path="/healthz",
    )
    baseline = start_server(
        "baseline",
        "baseline:create_app()",
        {
            "BASELINE_DATABASE_URL": tagged_url(setup.urls["registry"], BASELINE),
            "BASELINE_TABLE": "groups",
        },
        args,
        setup.log_dir,
        stack,
        cwd=ROOT / "bench",
    )
    print(
        "    "
        + ", ".join(f"{s.name} {s.url}" for s in (*apis.values(), dashboard, baseline))
        + f"; logs {setup.log_dir}",
        flush=True,
    )
    return Servers(apis["registry"], apis["grants"], apis["notifications"], dashboard, baseline)


@dataclass(frozen=True)
class Person:
    """Who signs in: a token's roles and region, and the session cookie the sign-in left."""

    label: str
    token: str
    region: str  # "" nationwide
    cookies: dict[str, str] = field(default_factory=dict)


def tokens(setup: Setup) -> dict[str, Person]:
    """A nationwide admin, the province's head of office, and a pendamping of one city, as
    `make run` signs them (kube/walkthrough.py's role_tokens)."""
    secret = setup.env["KUBE_JWT_SECRET"]
    made = {
        "national": ("admin", "*", "admin-bench"),
        "province": ("kepala_dinas", PROVINCE, "kepala-dinas-bench"),
        "pendamping": ("pendamping", REGENCY, "pendamping-bench"),
    }
    return {
        key: Person(
            f"{role} {'nationwide' if region == '*' else region}",
            issue_token(secret, sub=sub, roles=[role], region=region, ttl_seconds=8 * 3600),
            "" if region == "*" else region,
        )
        for key, (role, region, sub) in made.items()
    }


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(dashboard: Server, person: Person) -> Person:
    """The dashboard's own sign-in: the form (with its CSRF token) posted with the token, as
    a local sign-in link fills it; the session cookie it answers with."""
    with requests.Session() as session:
        form = session.get(f"{dashboard.url}/masuk", params={"token": person.token}, timeout=30)
        form.raise_for_status()
        answer = session.post(
            f"{dashboard.url}/masuk",
            data={"token": person.token, "csrf_token": CSRF.search(form.text).group(1)},
            allow_redirects=False,
            timeout=60,
        )
        if answer.status_code != 302:
            raise RuntimeError(f"sign-in as {person.label}: HTTP {answer.status_code}")
        return Person(person.label, person.token, person.region, session.cookies.get_dict())


# --- Measuring ------------------------------------------------------------------------------


@dataclass
class Timing:
    """Latencies (seconds) of a page's requests, the answers' sizes, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # wall time of the whole load

    def ms(self, p: float) -> float:
        return percentile(sorted(self.latencies), p) * 1000

    def max_ms(self) -> float:
        return max(self.latencies) * 1000

    def summary(self) -> str:
        errors = f"; {sum(self.errors.values())} errors" if self.errors else ""
        return (
            f"p50 {self.ms(50):,.0f} ms, p95 {self.ms(95):,.0f} ms, max {self.max_ms():,.0f} ms"
            f"{errors}"
        )


def fetch(session: requests.Session, url: str, timing: Timing | None, kind: str) -> None:
    """One GET, timed; an answer that is not the page asked for counts as an error."""
    started = time.perf_counter()
    try:
        response = session.get(url, timeout=300, allow_redirects=False)
        body = response.content
        problem = None
        if response.status_code != 200:
            problem = f"HTTP {response.status_code}: {response.text[:200]!r}"
        elif kind != "html" and "attachment" not in response.headers.get("Content-Disposition", ""):
            problem = "not a download"
    except requests.RequestException as exc:
        body, problem = b"", f"{type(exc).__name__}: {str(exc)[:200]}"
    elapsed = time.perf_counter() - started
    if timing is not None:
        timing.latencies.append(elapsed)
        timing.sizes.append(len(body))
        if problem:
            timing.errors[problem] += 1


def measure_sequential(url: str, cookies: dict, args, kind: str = "html") -> Timing:
    """Warm-ups, then --requests GETs one after another from one session."""
    timing = Timing()
    with requests.Session() as session:
        session.cookies.update(cookies)
        for _ in range(args.warmups):
            fetch(session, url, None, kind)
        started = time.perf_counter()
        for _ in range(args.requests):
            fetch(session, url, timing, kind)
        timing.seconds = time.perf_counter() - started
    return timing


def measure_concurrent(url: str, cookies: dict, args) -> Timing:
    """--concurrency clients at once, each its own session with the same cookie, each sending
    --requests GETs one after another."""
    timing = Timing()
    barrier = threading.Barrier(args.concurrency + 1)

    def client() -> None:
        with requests.Session() as session:
            session.cookies.update(cookies)
            fetch(session, url, None, "html")  # its own connection, warmed
            barrier.wait()
            for _ in range(args.requests):
                # list.append and Counter updates of single keys are atomic under the GIL.
                fetch(session, url, timing, "html")

    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    timing.seconds = time.perf_counter() - started
    return timing


def measure_baseline(servers: Servers, group_ids: list[uuid.UUID], args, rng) -> Timing:
    """The bare Flask route (one primary-key SELECT of a group), one request at a time."""
    timing = Timing()
    with requests.Session() as session:
        for _ in range(max(args.baseline_requests // 10, 20)):
            fetch(session, f"{servers.baseline.url}/rows/{rng.choice(group_ids)}", None, "json")
        started = time.perf_counter()
        for _ in range(args.baseline_requests):
            url = f"{servers.baseline.url}/rows/{rng.choice(group_ids)}"
            started_one = time.perf_counter()
            response = session.get(url, timeout=30)
            timing.latencies.append(time.perf_counter() - started_one)
            timing.sizes.append(len(response.content))
            if response.status_code != 200:
                timing.errors[f"HTTP {response.status_code}"] += 1
        timing.seconds = time.perf_counter() - started
    return timing


@dataclass(frozen=True)
class PageCase:
    name: str
    person: str  # key of tokens()
    path: str
    kind: str = "html"  # html, csv, xlsx


def page_cases(district: str, group_id: uuid.UUID) -> list[PageCase]:
    """Every page the issue names, for the role that would open it."""
    return [
        PageCase("Overview `/`, nationwide (admin)", "national", "/"),
        PageCase(f"Overview `/`, province {PROVINCE} (kepala dinas)", "province", "/"),
        PageCase(
            f"Overview drill-down to regency {REGENCY} (`/?region={REGENCY}`)",
            "province",
            f"/?region={REGENCY}",
        ),
        PageCase(
            f"Overview drill-down to district {district} (`/?region={district}`)",
            "province",
            f"/?region={district}",
        ),
        PageCase(f"Overview `/`, pendamping of {REGENCY}", "pendamping", "/"),
        PageCase(f"Pipeline `/alur`, province {PROVINCE}", "province", "/alur"),
        PageCase(f"Budgets `/anggaran`, province {PROVINCE}", "province", "/anggaran"),
        PageCase(
            f"Message reach `/pesan`, province {PROVINCE}, last 90 days", "province", "/pesan"
        ),
        PageCase("Group page `/kelompok/<id>`", "province", f"/kelompok/{group_id}"),
        PageCase(
            f"Comparison `/bandingkan?a={PROVINCE}&b={OTHER_PROVINCE}` (admin)",
            "national",
            f"/bandingkan?a={PROVINCE}&b={OTHER_PROVINCE}",
        ),
        PageCase(
            "Download CSV: the overdue list (`/unduh/alur/terlambat.csv`, up to 500 rows)",
            "province",
            "/unduh/alur/terlambat.csv",
            "csv",
        ),
        PageCase(
            "Download XLSX: the same table (`/unduh/alur/terlambat.xlsx`)",
            "province",
            "/unduh/alur/terlambat.xlsx",
            "xlsx",
        ),
    ]


def pick_district(setup: Setup) -> str:
    """The district of the regency with the most groups: the deepest drill-down."""
    with setup.connect("registry") as connection:
        return connection.execute(
            "SELECT left(region_code, 6) FROM groups WHERE region_code LIKE %s "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            (f"{REGENCY}%",),
        ).fetchone()[0]


def pick_group(setup: Setup, grants: GrantData) -> uuid.UUID:
    """A group of the regency with a paid grant, visits and the most messages."""
    candidates = [
        a.group.id
        for a in grants.applications
        if a.group.region_code.startswith(REGENCY) and any(s.action == "disburse" for s in a.steps)
    ]
    if not candidates:
        candidates = [a.group.id for a in grants.applications]
    with setup.connect("registry") as connection:
        visited = {
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT group_id FROM visits WHERE group_id = ANY(%s)", (candidates,)
            )
        }
    candidates = [c for c in candidates if c in visited] or candidates
    with setup.connect("notifications") as connection:
        row = connection.execute(
            "SELECT group_id FROM messages WHERE group_id = ANY(%s) "
            "GROUP BY group_id ORDER BY count(*) DESC, group_id LIMIT 1",
            (candidates,),
        ).fetchone()
    return row[0] if row else candidates[0]


def verdict(p95_ms: float) -> str:
    return f"p95 ≤ {TARGET_MS:,.0f} ms: {'met' if p95_ms <= TARGET_MS else '**missed**'}"


def measure_pages(setup, servers: Servers, people, grants: GrantData, args, report) -> None:
    """The bare route, then every page one request at a time, then the overview with several
    clients at once; each page's p95 beside the target and the bare route's."""
    rng = random.Random(args.seed + 3)
    group_ids = [a.group.id for a in grants.applications[:2000]]
    bare = measure_baseline(servers, group_ids, args, rng)
    bare_p95 = bare.ms(95)
    bare_text = (
        f"bare Flask route, one PK SELECT: p50 {bare.ms(50):.1f}, p95 {bare_p95:.1f}, "
        f"p99 {bare.ms(99):.1f} ms"
    )
    report.detail(
        f"Bare Flask route, {args.baseline_requests} requests one at a time",
        f"p50 {bare.ms(50):.2f} ms, p95 {bare_p95:.2f} ms, p99 {bare.ms(99):.2f} ms"
        + (f"; errors {dict(bare.errors)}" if bare.errors else ""),
    )
    district = pick_district(setup)
    group_id = pick_group(setup, grants)
    for case in page_cases(district, group_id):
        person = people[case.person]
        timing = measure_sequential(
            servers.dashboard.url + case.path, person.cookies, args, case.kind
        )
        size = sum(timing.sizes) / max(len(timing.sizes), 1) / 1024
        report.compare(
            Comparison(
                case.name,
                f"{timing.summary()} ({args.requests} requests, {size:,.0f} KiB)",
                bare_text,
                f"p95 {timing.ms(95) / max(bare_p95, 1e-9):,.0f}x",
                verdict(timing.ms(95)),
            )
        )
        for problem, count in timing.errors.most_common(3):
            report.note(f"{case.name}: {count} x {problem}")
    case = page_cases(district, group_id)[1]
    timing = measure_concurrent(
        servers.dashboard.url + case.path, people[case.person].cookies, args
    )
    report.compare(
        Comparison(
            f"{case.name}, {args.concurrency} clients at once",
            f"{timing.summary()} ({len(timing.latencies)} requests; "
            f"{len(timing.latencies) / max(timing.seconds, 1e-9):.1f} pages/s)",
            bare_text,
            f"p95 {timing.ms(95) / max(bare_p95, 1e-9):,.0f}x",
            verdict(timing.ms(95)),
        )
    )
    for problem, count in timing.errors.most_common(3):
        report.note(f"overview, {args.concurrency} clients: {count} x {problem}")


def overview_calls(client: KubeClient, region: str) -> list[tuple[str, Callable[[], object]]]:
    """The overview's report calls, with the arguments the page passes (pages.overview)."""
    level = pages.child_level(region)
    since = pages.period_since(pages.DEFAULT_PERIOD)
    scoped = region or None
    return [
        ("registry groups", lambda: client.registry.report_groups(level=level, region=scoped)),
        ("grants pipeline", lambda: client.grants.report_pipeline(level=level, region=scoped)),
        ("grants budgets", lambda: client.grants.report_budgets(region=scoped)),
        (
            "notifications reach",
            lambda: client.notifications.report_reach(level=level, region=scoped, since=since),
        ),
    ]


def comparison_calls(client: KubeClient, region: str) -> list[tuple[str, Callable[[], object]]]:
    """One side of the comparison: the report calls pages.compare makes for one region."""
    since = pages.period_since(pages.DEFAULT_PERIOD)
    return [
        (f"{region} registry groups", lambda: client.registry.report_groups(region=region)),
        (f"{region} registry visits", lambda: client.registry.report_visits(region=region)),
        (f"{region} registry revenue", lambda: client.registry.report_revenue(region=region)),
        (f"{region} grants pipeline", lambda: client.grants.report_pipeline(region=region)),
        (f"{region} grants overdue", lambda: client.grants.report_overdue(region=region)),
        (f"{region} grants budgets", lambda: client.grants.report_budgets(region=region)),
        (
            f"{region} notifications reach",
            lambda: client.notifications.report_reach(region=region, since=since),
        ),
    ]


@dataclass
class CallTimes:
    """Each call's durations (seconds) and the durations of all of them one after another,
    and of the page function that makes them, over the measured rounds."""

    each: dict[str, list[float]]
    totals: list[float]
    built: list[float]

    @staticmethod
    def ms(values: list[float], p: float) -> str:
        return f"{percentile(sorted(values), p) * 1000:,.0f}"


def time_calls(calls, build: Callable[[], object], args) -> CallTimes:
    """The calls one after another, then the page function, --warmups + --requests times."""
    times = CallTimes({name: [] for name, _ in calls}, [], [])
    for round_number in range(args.warmups + args.requests):
        measured = round_number >= args.warmups
        total = 0.0
        for name, call in calls:
            started = time.perf_counter()
            call()
            elapsed = time.perf_counter() - started
            total += elapsed
            if measured:
                times.each[name].append(elapsed)
        started = time.perf_counter()
        build()
        if measured:
            times.totals.append(total)
            times.built.append(time.perf_counter() - started)
    return times


def measure_api_parts(servers: Servers, people, args, report: Report) -> None:
    """The report calls of the overview (nationwide and the province's) and of the comparison
    alone, through kube-client one after another as the pages make them, and the page
    functions in this process (the calls plus the page's own assembly, without Flask and its
    template): how much of a page is the APIs."""
    period = pages.DEFAULT_PERIOD
    for key in ("national", "province", "comparison"):
        person = people["national" if key == "comparison" else key]
        with KubeClient(
            **servers.api_urls(), token=person.token, timeout=300, max_retries=1
        ) as client:
            if key == "comparison":
                what = f"Comparison {PROVINCE} vs {OTHER_PROVINCE}"
                calls = comparison_calls(client, PROVINCE) + comparison_calls(
                    client, OTHER_PROVINCE
                )

                def build(client=client):
                    return pages.compare(client, PROVINCE, OTHER_PROVINCE, period)

                function = "pages.compare()"
            else:
                what = f"Overview of {person.label}"
                calls = overview_calls(client, person.region)

                def build(client=client, region=person.region):
                    return pages.overview(client, region, period)

                function = "pages.overview()"
            times = time_calls(calls, build, args)
        report.detail(
            f"{what}: its {len(calls)} report calls alone (p50 each, ms)",
            ", ".join(f"{name} {times.ms(values, 50)}" for name, values in times.each.items()),
        )
        report.detail(
            f"{what}: the {len(calls)} calls one after another",
            f"p50 {times.ms(times.totals, 50)} ms, p95 {times.ms(times.totals, 95)} ms",
        )
        report.detail(
            f"{what}: {function} in this process (calls + assembly)",
            f"p50 {times.ms(times.built, 50)} ms, p95 {times.ms(times.built, 95)} ms",
        )


# --- The run --------------------------------------------------------------------------------


def print_summary(report: Report, facts: list[tuple[str, str]], args) -> None:
    """The closing Markdown tables: each page beside the bare route and the target, where the
    time goes (the bare route, the report calls alone), the data set, the machine."""
    print("\n## Results\n")
    print(
        f"{args.groups:,} groups of {args.members_per_group} members, {args.applications:,} "
        f"applications, about {args.messages:,} messages; {args.requests} requests per page "
        f"one after another after {args.warmups} warm-ups, from a requests.Session holding the "
        f"dashboard's session cookie; every API, the dashboard and the bare route under "
        f"gunicorn with {args.gunicorn_workers} sync workers each. Baseline: a bare Flask "
        "route doing one primary-key SELECT of a group on the same PostgreSQL, served the "
        "same way, one request at a time. Ratio: the page's p95 over the bare route's p95.\n"
    )
    print("| Figure | Measured | Baseline | Ratio | Target |\n|---|---|---|---|---|")
    for c in report.comparisons:
        print(f"| {c.name} | {c.figure} | {c.baseline} | {c.ratio} | {c.target} |")
    print("\n| Where the time goes | |\n|---|---|")
    for name, value in report.details:
        print(f"| {name} | {value} |")
    print("\n| Data set | |\n|---|---|")
    for name, value in report.data:
        print(f"| {name} | {value} |")
    print("\n| Machine | |\n|---|---|")
    for name, value in facts:
        print(f"| {name} | {value} |")
    for message in report.notes:
        print(f"\nNOTE: {message}")


def benchmark(args: argparse.Namespace, stack: ExitStack, report: Report):
    """Every step in order (cleanup goes on `stack` as each resource appears)."""
    with step("1. Databases, migrations, contexts"):
        setup = prepare(args, stack, report)
    with step(f"2. Registry: {args.groups:,} groups of {args.members_per_group} (COPY)"):
        groups = seed_registry(setup, args, report)
    with step(f"3. Grants: programmes, {args.applications:,} applications with their history"):
        grants = seed_grants(setup, groups, args, report)
    with step("4. Registry: paid grants and mentoring visits"):
        seed_registry_follow_up(setup, groups, grants, args, report)
    with step(f"5. Notifications: contacts, opt-outs, about {args.messages:,} messages"):
        seed_notifications(setup, grants, args, report)
    with step("6. VACUUM (ANALYZE), row counts, checks"):
        vacuum_analyze(setup, report)
        table_counts(setup, report)
        check_trail(setup, grants, args, report)
    with step("7. Three APIs, the dashboard and the bare route under gunicorn; sign-in"):
        servers = start_servers(setup, args, stack)
        people = {key: sign_in(servers.dashboard, p) for key, p in tokens(setup).items()}
    with step(f"8. Pages: {args.requests} requests each after {args.warmups} warm-ups"):
        measure_pages(setup, servers, people, grants, args, report)
    with step("9. The report calls of the overview and the comparison alone"):
        measure_api_parts(servers, people, args, report)
    for server in servers.all():
        if server.process.poll() is not None:
            report.note(f"{server.name} exited during the run:\n{log_tail(server.log_path)}")
        elif "WORKER TIMEOUT" in server.log_path.read_text(errors="replace"):
            report.note(f"gunicorn killed a worker of {server.name} for running past its timeout")
    return [*setup.facts, ("Load average at end (1/5/15 min)", load_average())]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, clean up whatever happens, then print the summary."""
    args = parse_args(argv)
    stop_on_sigterm()
    report = Report()
    started = time.perf_counter()
    # The stack is the `finally`: servers, the contexts' connections, the databases, the run's
    # Redis keys and a private Redis are released in reverse order of creation.
    with ExitStack() as stack:
        try:
            facts = benchmark(args, stack, report)
        finally:
            print("\n== 10. Cleanup: servers, connections, databases, Redis keys", flush=True)
    facts.append(("Whole run", f"{(time.perf_counter() - started) / 60:.1f} min"))
    print_summary(report, facts, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
