"""Grants benchmark: workflow transitions, a large decree and approvals racing for one budget,
each through the real HTTP API, each beside a physical baseline measured in the same run.

Creates its own database, projects groups as the registry's events would, then starts the
grant service under gunicorn (as deployed, but with a longer worker timeout) and, beside it, a
bare Flask app doing one primary-key SELECT on the same PostgreSQL (bench/baseline.py), served
the same way. It
measures submit and verify on many applications, approvals of one programme's budget from
many clients at once, and one decree approving 10,000 verified applications (set up by bulk
SQL with valid audit chains). Figures are printed, never asserted; one table closes the output.

    .venv/bin/python bench/grants.py --help
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
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
from datetime import UTC, date, datetime
from pathlib import Path

import redis
import requests

# Helpers of the registry benchmark, beside this script (run as `python bench/grants.py`).
from registry import (
    add_server_arguments,
    backend_pids,
    child_pids,
    load_average,
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
    wait_ready,
)
from sqlalchemy import String, func, insert, select, text

from kube.catalogue import app_target
from kube.localinfra import create_database, database_url, drop_database, free_port
from kube.localrun import gunicorn_command
from services.grants import create_app, definitions
from services.grants.audit import GENESIS, record_hash, verify_chains
from services.grants.budget import ledger_totals
from services.grants.calendar import WorkingCalendar
from services.grants.handlers import apply_group_snapshot
from services.grants.models import EVENT_TABLES, AuditRecord, Decree, Grant, Program
from services.grants.service import SERVICE as GRANTS
from shared.auth import issue_token
from shared.events.contracts import contract_for
from shared.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
OutboxEvent = EVENT_TABLES.outbox
# PostgreSQL application names of the connections of this process and of each server.
SETUP = "kube-bench-setup"
SERVER = "kube-bench-grants"
BASELINE = "kube-bench-baseline"
# gunicorn's default worker timeout, which docker-compose.yml and `make run` keep: a request
# running longer has its sync worker killed.
DEPLOYED_WORKER_TIMEOUT = 30
REGION = "64"  # Kalimantan Timur: the office every request comes from
# Who takes each step (the submitter and verifier are never the approver).
SUBMITTER, VERIFIER, APPROVER = "pendamping-bench", "verifikator-bench", "kepala-bench"
AMOUNT_PER_MEMBER = 2_000_000
# Every document of the regional route (the route of a provincial programme), checked.
CHECKLIST = dict.fromkeys(
    next(d for d in definitions.shipped_definitions() if d["key"] == "regional")["documents"],
    True,
)
VERIFY_DATA = {"checklist": CHECKLIST, "minutes_number": "BA-460/VERVAL/2026"}
BUSINESS_TYPES = ("tempe", "kerupuk", "jahit", "warung sembako", "budidaya lele", "kue basah")
GROUP_WORDS = ("Maju Bersama", "Sejahtera", "Mandiri", "Sumber Rezeki", "Harapan Baru")
# Regencies and cities of Kalimantan Timur.
REGENCIES = ("6401", "6402", "6403", "6404", "6405", "6407", "6408", "6409", "6471", "6472")


# --- Options --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with every default documented in --help."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--applications",
        type=int,
        default=2000,
        help="applications created, submitted, verified and then approved against one "
        "budget through the API (default %(default)s)",
    )
    parser.add_argument(
        "--decree-size",
        type=int,
        default=10_000,
        help="verified applications one decree approves (default %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=2000,
        help="measured requests of each baseline load (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="client threads of the transition loads, each with its own session "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--contention-clients",
        type=int,
        default=32,
        help="client threads sending approvals of one programme at once (default %(default)s)",
    )
    parser.add_argument(
        "--gunicorn-workers",
        type=int,
        default=2,
        help="gunicorn sync workers of each server (default %(default)s)",
    )
    parser.add_argument(
        "--gunicorn-timeout",
        type=int,
        default=300,
        help="gunicorn's worker timeout in seconds (default %(default)s), so a slow decree is "
        f"measured; deployments keep gunicorn's own {DEPLOYED_WORKER_TIMEOUT} s, and the run "
        "says when the decree took longer",
    )
    add_server_arguments(
        parser, redis="the run's keys carry their own prefix and are deleted at the end"
    )
    parser.add_argument(
        "--seed", type=int, default=2026, help="seed of the generated data (default %(default)s)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database (and the gunicorn logs) afterwards"
    )
    args = parser.parse_args(argv)
    for name in (
        "applications",
        "decree_size",
        "requests",
        "concurrency",
        "contention_clients",
        "gunicorn_workers",
    ):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.applications < 2:
        parser.error("--applications must be at least 2 (half of them exhaust the budget)")
    return args


# --- Output ---------------------------------------------------------------------------------


@dataclass
class Comparison:
    """One figure of the closing table: the grant service's, the baseline's and their ratio."""

    name: str
    figure: str
    baseline: str
    ratio: str


@dataclass
class Report:
    """Figures printed as they come; the comparisons and checks printed again at the end."""

    comparisons: list[Comparison] = field(default_factory=list)
    checks: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, name: str, value: str) -> None:
        print(f"    {name}: {value}", flush=True)

    def compare(self, name: str, figure: str, baseline: str, ratio: str) -> None:
        self.comparisons.append(Comparison(name, figure, baseline, ratio))

    def check(self, name: str, value: str) -> None:
        self.checks.append((name, value))
        print(f"    {name}: {value}", flush=True)

    def note(self, message: str) -> None:
        self.notes.append(message)
        print(f"    NOTE: {message}", flush=True)


# --- Load -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request to send; `tag` comes back with its answer (e.g. the grant it moves)."""

    method: str
    path: str
    headers: dict
    body: dict | list | None = None
    tag: str | None = None


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    seconds: float
    tag: str | None
    body: dict | None  # the problem document of a refusal; None for a 2xx


@dataclass
class CpuUse:
    """CPU seconds each role used during a phase, the rest of the machine's, and how busy it was."""

    roles: dict[str, float]
    other: float
    busy: float

    def summary(self) -> str:
        parts = ", ".join(f"{role} {seconds:.1f} s" for role, seconds in self.roles.items())
        return f"{parts}, other processes {self.other:.1f} s; machine {self.busy:.0%} busy"


class CpuMeter:
    """Measures CPU use from /proc, as bench/registry.py does, returning the numbers too."""

    def __init__(self, roles: Callable[[], dict[str, list[int]]]):
        self.roles = roles
        self.before = self._sample()

    def _sample(self) -> tuple[float, float, dict[int, float], dict[str, list[int]]]:
        roles = self.roles()
        used = {pid: process_cpu(pid) for pids in roles.values() for pid in pids}
        return time.perf_counter(), machine_busy_cpu(), used, roles

    def stop(self) -> CpuUse:
        """Each role's CPU seconds since the meter started (a process that started later counts
        from zero; one that ended is lost to 'other')."""
        wall, busy, used, roles = self._sample()
        wall0, busy0, used0, _ = self.before
        seconds = {
            role: sum(used[pid] - used0.get(pid, 0.0) for pid in pids)
            for role, pids in roles.items()
        }
        other = max(busy - busy0 - sum(seconds.values()), 0.0)
        share = (busy - busy0) / max((wall - wall0) * (os.cpu_count() or 1), 1e-9)
        return CpuUse(seconds, other, share)


@dataclass
class Load:
    """Every answer of a load, its wall time and the CPU it took."""

    answers: list[Answer]
    seconds: float
    cpu: CpuUse | None = None

    @property
    def rate(self) -> float:
        return len(self.answers) / max(self.seconds, 1e-9)

    def latency_ms(self, p: float) -> float:
        return percentile(sorted(a.seconds for a in self.answers), p) * 1000

    def statuses(self) -> Counter[int]:
        return Counter(a.status for a in self.answers)

    def server_cpu_ms(self) -> float:
        """The server's CPU (its gunicorn and PostgreSQL backends) per request, in ms."""
        used = self.cpu.roles["gunicorn"] + self.cpu.roles["PostgreSQL"]
        return used / max(len(self.answers), 1) * 1000

    def summary(self) -> str:
        """`rate req/s, p50 .. ms, p99 .. ms, server CPU .. ms/request`."""
        return (
            f"{self.rate:,.0f} req/s, p50 {self.latency_ms(50):.1f} ms, "
            f"p99 {self.latency_ms(99):.1f} ms; server CPU {self.server_cpu_ms():.1f} ms/request"
        )


def send_share(base_url: str, calls: list[Call], barrier: threading.Barrier, answers: list):
    """One client thread: its own session, one request at a time."""
    with requests.Session() as session:
        barrier.wait()
        for call in calls:
            started = time.perf_counter()
            try:
                response = session.request(
                    call.method, base_url + call.path, json=call.body, headers=call.headers,
                    timeout=120,
                )  # fmt: skip
                status = response.status_code
                body = None if status < 300 else problem_of(response)
            except requests.RequestException as exc:
                status, body = 0, {"detail": f"{type(exc).__name__}: {str(exc)[:160]}"}
            # list.append is atomic under the GIL.
            answers.append(Answer(status, time.perf_counter() - started, call.tag, body))


def problem_of(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:160]}
    return body if isinstance(body, dict) else {"detail": str(body)[:160]}


def run_load(base_url: str, calls: list[Call], concurrency: int) -> Load:
    """Send `calls` over `concurrency` threads started together; time each request."""
    shares = [calls[i::concurrency] for i in range(concurrency) if calls[i::concurrency]]
    answers: list[Answer] = []
    barrier = threading.Barrier(len(shares) + 1)
    threads = [
        threading.Thread(target=send_share, args=(base_url, share, barrier, answers))
        for share in shares
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return Load(answers, time.perf_counter() - started)


def unexpected(load: Load, expected: set[int], what: str, report: Report) -> int:
    """Note the answers whose status is not one of `expected`; return how many."""
    wrong = [a for a in load.answers if a.status not in expected]
    problems = Counter(f"HTTP {a.status}: {json.dumps(a.body)[:200]}" for a in wrong)
    for problem, count in problems.most_common(5):
        report.note(f"{what}: {count} x {problem}")
    return len(wrong)


def ratio(figure: float, baseline: float) -> str:
    return f"{figure / max(baseline, 1e-9):.2f}x"


def ratios(load: Load, floor: Load) -> str:
    """A load's rate, latencies and server CPU per request over the baseline's."""
    return (
        f"rate {ratio(load.rate, floor.rate)}, "
        f"p50 {ratio(load.latency_ms(50), floor.latency_ms(50))}, "
        f"p99 {ratio(load.latency_ms(99), floor.latency_ms(99))}, "
        f"CPU/request {ratio(load.server_cpu_ms(), floor.server_cpu_ms())}"
    )


# --- Servers --------------------------------------------------------------------------------


@dataclass
class Server:
    """A gunicorn serving one app on a loopback port."""

    process: subprocess.Popen
    base_url: str
    log_path: Path
    application_name: str

    def pids(self) -> list[int]:
        return [self.process.pid, *child_pids(self.process.pid)]


def start_server(
    target: str,
    env: dict[str, str],
    args: argparse.Namespace,
    log_dir: Path,
    application_name: str,
    *,
    cwd: Path = ROOT,
) -> Server:
    """`target` under gunicorn as deployed (its workers, its config), logging to a file."""
    port = free_port()
    command = gunicorn_command(target, f"127.0.0.1:{port}", workers=args.gunicorn_workers)
    command += ["--timeout", str(args.gunicorn_timeout)]
    log_path = log_dir / f"{application_name}.log"
    # A file, not a pipe: nobody reads a pipe during the run, and a full one blocks workers.
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    server = Server(process, base_url, log_path, application_name)
    wait_ready(process, base_url, log_path)
    return server


def worker_timeouts(server: Server) -> int:
    """How many times gunicorn killed a worker for running past its timeout."""
    return server.log_path.read_text(errors="replace").count("WORKER TIMEOUT")


# --- Setup ----------------------------------------------------------------------------------


@dataclass
class Setup:
    """What the setup prepared for the measurements."""

    context: object
    db_url: str
    server: Server
    baseline: Server
    tokens: dict[str, str]
    facts: list[tuple[str, str]]


def bench_environment(db_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    """The grant service's settings for this run: own database, queues, keys and secret."""
    return {
        "GRANTS_DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "KUBE_JWT_SECRET": secrets.token_hex(32),
        "KUBE_QUEUE_PREFIX": prefix,
        # Empty means unset: our HS256 tokens carry no audience or issuer to check.
        "KUBE_JWT_AUDIENCE": "",
        "KUBE_JWT_ISSUER": "",
    }


def delete_keys(redis_url: str, prefix: str) -> None:
    """Remove the run's Redis keys (the relay nudges the outbox left behind)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    except redis.RedisError as exc:
        print(f"    could not delete the run's Redis keys: {exc}", flush=True)
    finally:
        client.close()


def prepare(args: argparse.Namespace, stack: ExitStack, report: Report) -> Setup:
    """A new migrated database, Redis, the app in this process, and both servers."""
    run_id = uuid.uuid4().hex[:8]
    name = f"kube_bench_{run_id}_grants"
    prefix = f"kubebench-{run_id}"
    print(f"    database {name}, Redis key prefix {prefix}", flush=True)
    server_url = postgres_server(args.database_url)
    redis_url = redis_server(args.redis_url, stack)
    stack.callback(delete_keys, redis_url, prefix)
    create_database(server_url, name, exist_ok=False)
    db_url = database_url(server_url, name)
    if args.keep:
        stack.callback(print, f"\nKept the database: {db_url}")
    else:
        stack.callback(drop_database, server_url, name)
    upgrade(GRANTS.migrations, db_url)
    # Before the app is built: its settings are read from the environment, and the gunicorn
    # children inherit the same.
    os.environ.update(bench_environment(tagged_url(db_url, SETUP), redis_url, prefix))
    app = create_app()
    # The app logs INFO lines as JSON; here they would only interleave with the figures.
    logging.getLogger().setLevel(logging.WARNING)
    context = app.extensions["kube"]
    stack.callback(context.db.dispose)
    if os.getloadavg()[0] > 0.5:
        report.note(
            f"the 1-minute load average was {os.getloadavg()[0]:.2f} at the start: other work "
            "may be sharing the CPUs ('other processes' in the CPU figures says how much)"
        )
    log_dir = Path(tempfile.mkdtemp(prefix="kube-bench-grants-"))
    if args.keep:
        stack.callback(print, f"Kept the gunicorn logs: {log_dir}")
    else:
        stack.callback(shutil.rmtree, log_dir, ignore_errors=True)
    server = start_server(
        app_target("grants"),
        {"GRANTS_DATABASE_URL": tagged_url(db_url, SERVER)},
        args,
        log_dir,
        SERVER,
    )
    stack.callback(stop_process, server.process)
    baseline = start_server(
        "baseline:create_app()",
        {"BASELINE_DATABASE_URL": tagged_url(db_url, BASELINE), "BASELINE_TABLE": "grants"},
        args,
        log_dir,
        BASELINE,
        cwd=ROOT / "bench",
    )
    stack.callback(stop_process, baseline.process)
    print(f"    grants {server.base_url}, baseline {baseline.base_url}; logs {log_dir}")
    secret = os.environ["KUBE_JWT_SECRET"]
    tokens = {
        "admin": issue_token(secret, sub="admin-bench", roles=["admin"], region="*"),
        "pendamping": issue_token(secret, sub=SUBMITTER, roles=["pendamping"], region=REGION),
        "verifikator": issue_token(secret, sub=VERIFIER, roles=["verifikator"], region=REGION),
        "kepala_dinas": issue_token(secret, sub=APPROVER, roles=["kepala_dinas"], region=REGION),
    }
    return Setup(context, db_url, server, baseline, tokens, machine_facts(context))


def auth(setup: Setup, role: str, **headers) -> dict:
    return {"Authorization": f"Bearer {setup.tokens[role]}", **headers}


@dataclass(frozen=True)
class GroupFacts:
    id: uuid.UUID
    name: str
    business_type: str
    region_code: str
    members: int


def group_payload(group: GroupFacts, rng: random.Random) -> dict:
    """A group.updated payload as the registry sends it: officers, members and a bank account."""
    roles = ["ketua", "sekretaris", "bendahara", *["anggota"] * (group.members - 3)]
    return {
        "group": {
            "group_id": str(group.id),
            "version": 1,
            "name": group.name,
            "region_code": group.region_code,
            "status": "active",
            "business_type": group.business_type,
            "member_count": group.members,
            "members": [
                {
                    "member_id": str(uuid.uuid4()),
                    "name": f"Anggota {i + 1} {group.name}",
                    "role": role,
                    "nik_masked": f"{group.region_code[:4]}********{rng.randint(1000, 9999)}",
                    "phone": None,
                    "email": None,
                    "language": "id",
                }
                for i, role in enumerate(roles)
            ],
            "bank_account": {
                "bank_name": rng.choice(("BRI", "BNI", "Bank Mandiri", "Bankaltimtara")),
                "account_number": f"{rng.randint(10**14, 10**15 - 1)}",
                "account_holder": group.name,
            },
        }
    }


def project_groups(setup: Setup, count: int, rng: random.Random, report: Report):
    """Project `count` active groups of 5-20 members in Kalimantan Timur villages, each through
    the event handler with a contract-checked payload, as the registry's events arrive."""
    groups = []
    for n in range(1, count + 1):
        business = rng.choice(BUSINESS_TYPES)
        groups.append(
            GroupFacts(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                name=f"KUBE {business.title()} {rng.choice(GROUP_WORDS)} {n}",
                business_type=business,
                region_code=(
                    f"{rng.choice(REGENCIES)}{rng.randint(1, 12):02d}{rng.randint(1001, 1012)}"
                ),
                members=rng.randint(5, 20),
            )
        )
    schema = contract_for("group.updated").schema()
    started = time.perf_counter()
    for first in range(0, count, 500):
        with setup.context.db.transaction() as session:
            for group in groups[first : first + 500]:
                apply_group_snapshot(session, schema.load(group_payload(group, rng)), {})
    seconds = time.perf_counter() - started
    report.figure("Groups projected (setup)", f"{count:,} in {seconds:.1f} s")
    return groups


def create_programs(setup: Setup, workflow_budget: int, decree_budget: int) -> tuple[dict, dict]:
    """Two provincial programmes through the API: one whose budget the approvals race for,
    one large enough for the whole decree."""
    made = []
    for name, total in (
        ("UEP KUBE Kaltim 2026 (approvals)", workflow_budget),
        ("UEP KUBE Kaltim 2026 (decree)", decree_budget),
    ):
        response = requests.post(
            f"{setup.server.base_url}/api/v1/programs",
            json={
                "name": name,
                "fiscal_year": 2026,
                "funding_source": "apbd_province",
                "region_code": REGION,
                "total_budget": total,
                "amount_rule": "per_member",
                "amount": AMOUNT_PER_MEMBER,
                "min_members": 5,
                "max_members": 20,
            },
            headers=auth(setup, "admin"),
            timeout=30,
        )
        if response.status_code != 201:
            raise RuntimeError(f"creating a programme: HTTP {response.status_code} {response.text}")
        made.append(response.json())
    return made[0], made[1]


def insert_verified(setup: Setup, program: dict, groups: list[GroupFacts]) -> list[uuid.UUID]:
    """Verified applications of `program` for `groups` by bulk SQL, each with the three audit
    records (create, submit, verify) the API would have chained; their events are not made."""
    now = datetime.now(UTC)
    program_id = uuid.UUID(program["id"])
    rows, records = [], []
    with setup.context.db.transaction() as session:
        route = definitions.route(session, "regional", 1)
        calendar = WorkingCalendar.load(session)
        for group in groups:
            grant_id = uuid.uuid4()
            amount = AMOUNT_PER_MEMBER * group.members
            rows.append(
                {
                    "id": grant_id,
                    "program_id": program_id,
                    "group_id": group.id,
                    "group_name": group.name,
                    "region_code": group.region_code,
                    "amount": amount,
                    "business_plan": f"Usaha {group.name}: modal kerja dan peralatan.",
                    "requested_items": [],
                    "documents": CHECKLIST,
                    "stage": "verified",
                    "workflow_key": route.key,
                    "workflow_version": route.version,
                    "version": 3,
                    "stage_entered_at": now,
                    "due_at": calendar.due_at(
                        now, route.deadlines["verified"].working_days, group.region_code
                    ),
                    "created_by": SUBMITTER,
                    "submitted_by": SUBMITTER,
                    "verified_by": VERIFIER,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            previous = GENESIS
            for seq, (actor, role, action, source, target, data) in enumerate(
                (
                    (SUBMITTER, "pendamping", "create", None, "draft", {"amount": amount}),
                    (SUBMITTER, "pendamping", "submit", "draft", "submitted", {}),
                    (VERIFIER, "verifikator", "verify", "submitted", "verified", VERIFY_DATA),
                ),
                1,
            ):
                record = AuditRecord(
                    grant_id=grant_id,
                    seq=seq,
                    actor=actor,
                    role=role,
                    action=action,
                    from_stage=source,
                    to_stage=target,
                    comment=None,
                    data=data,
                    at=now,
                    request_id=None,
                    workflow_key=route.key,
                    workflow_version=route.version,
                    prev_hash=previous,
                )
                record.hash = previous = record_hash(record)
                records.append(
                    {
                        c.key: getattr(record, c.key)
                        for c in AuditRecord.__table__.c
                        if c.key != "id"
                    }
                )
        session.execute(insert(Grant), rows)
        session.execute(insert(AuditRecord), records)
    return [row["id"] for row in rows]


def vacuum_analyze(setup: Setup) -> None:
    """What autovacuum does after a bulk load, done now, so no phase depends on when it runs."""
    engine = setup.context.db.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE)"))


# --- Measurements ---------------------------------------------------------------------------


def cpu_meter(setup: Setup, server: Server) -> CpuMeter:
    """CPU of this process (the client), the server's gunicorn and its PostgreSQL backends."""
    return CpuMeter(
        lambda: {
            "client (this process)": [os.getpid()],
            "gunicorn": server.pids(),
            "PostgreSQL": backend_pids(setup.context, server.application_name),
        }
    )


def measured(setup: Setup, server: Server, calls: list[Call], concurrency: int, report, what):
    """Run a load against `server`, print its figures and CPU; return it."""
    meter = cpu_meter(setup, server)
    load = run_load(server.base_url, calls, concurrency)
    load.cpu = meter.stop()
    report.figure(what, f"{load.summary()} ({len(load.answers):,} requests, {concurrency} threads)")
    report.figure(f"CPU during {what}", load.cpu.summary())
    return load


@dataclass
class Baselines:
    """The bare app's loads: reads at each concurrency, one client's reads, writes."""

    reads: dict[int, Load] = field(default_factory=dict)
    sequential: Load | None = None
    writes: Load | None = None


def baseline_calls(ids: list[uuid.UUID], count: int, rng: random.Random, *, write=False):
    if write:
        return [Call("POST", f"/rows/{rng.choice(ids)}/touch", {}) for _ in range(count)]
    return [Call("GET", f"/rows/{rng.choice(ids)}", {}) for _ in range(count)]


def measure_baselines(setup, ids, args, rng, report) -> Baselines:
    """The physical floor: a bare Flask route doing one primary-key SELECT of an application,
    at each concurrency the service is measured at, and from one client for the decree."""
    found = Baselines()
    warmup = run_load(setup.baseline.base_url, baseline_calls(ids, 200, rng), args.concurrency)
    unexpected(warmup, {200}, "baseline warm-up", report)
    for concurrency in sorted({args.concurrency, args.contention_clients}):
        load = measured(
            setup,
            setup.baseline,
            baseline_calls(ids, args.requests, rng),
            concurrency,
            report,
            f"baseline SELECT, {concurrency} threads",
        )
        unexpected(load, {200}, "baseline SELECT", report)
        found.reads[concurrency] = load
    found.sequential = measured(
        setup,
        setup.baseline,
        baseline_calls(ids, args.decree_size, rng),
        1,
        report,
        "baseline SELECT, one client",
    )
    unexpected(found.sequential, {200}, "baseline SELECT, one client", report)
    found.writes = measured(
        setup,
        setup.baseline,
        baseline_calls(ids, args.requests, rng, write=True),
        args.concurrency,
        report,
        f"baseline UPDATE + commit, {args.concurrency} threads",
    )
    unexpected(found.writes, {200}, "baseline UPDATE", report)
    return found


def create_applications(setup, program: dict, groups: list[GroupFacts], args, report):
    """Applications for `groups` through POST /api/v1/grants; their ids and versions."""
    calls = [
        Call(
            "POST",
            "/api/v1/grants",
            auth(setup, "pendamping"),
            {
                "program_id": program["id"],
                "group_id": str(group.id),
                "business_plan": f"Usaha {group.name}: modal kerja dan peralatan.",
                "documents": CHECKLIST,
            },
            tag=str(group.id),
        )
        for group in groups
    ]
    load = measured(setup, setup.server, calls, args.concurrency, report, "create (POST /grants)")
    unexpected(load, {201}, "create", report)
    with setup.context.db.transaction() as session:
        return list(
            session.scalars(select(Grant.id).where(Grant.program_id == uuid.UUID(program["id"])))
        )


def transition_calls(setup, ids, action: str, role: str, version: int, data: dict) -> list[Call]:
    headers = auth(setup, role, **{"If-Match": f'"{version}"'})
    body = {"action": action, "comment": None, "data": data}
    return [
        Call("POST", f"/api/v1/grants/{grant_id}/transitions", headers, body, tag=str(grant_id))
        for grant_id in ids
    ]


def measure_transitions(setup, ids, baselines: Baselines, args, report) -> None:
    """Submit, then verify, every application through the API."""
    floor = baselines.reads[args.concurrency]
    for action, role, version, data in (
        ("submit", "pendamping", 1, {}),
        ("verify", "verifikator", 2, VERIFY_DATA),
    ):
        calls = transition_calls(setup, ids, action, role, version, data)
        load = measured(setup, setup.server, calls, args.concurrency, report, f"{action}")
        wrong = unexpected(load, {200}, action, report)
        report.compare(
            f"Transition `{action}` ({len(ids):,} applications, {args.concurrency} threads)",
            f"{load.summary()}; {wrong} errors",
            floor.summary(),
            ratios(load, floor),
        )


class BudgetWatch:
    """Reads the programme's committed counters as often as it can while approvals race."""

    def __init__(self, setup: Setup, program_id: uuid.UUID):
        self.setup, self.program_id = setup, program_id
        self.samples, self.overdrawn, self.most = 0, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        engine = self.setup.context.db.engine
        query = select(Program.reserved, Program.disbursed, Program.total_budget).where(
            Program.id == self.program_id
        )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            while not self.stop.is_set():
                reserved, disbursed, total = connection.execute(query).one()
                self.samples += 1
                self.most = max(self.most, reserved + disbursed)
                self.overdrawn += reserved + disbursed > total
                time.sleep(0.002)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def measure_contention(setup, program: dict, ids, baselines: Baselines, args, report) -> None:
    """Approve every verified application of one programme from many clients at once; its
    budget covers about half of them."""
    program_id = uuid.UUID(program["id"])
    data = {"decree_number": "SK-460/UEP/2026", "decree_date": date.today().isoformat()}
    calls = transition_calls(setup, ids, "approve", "kepala_dinas", 3, data)
    random.Random(args.seed + 2).shuffle(calls)
    with BudgetWatch(setup, program_id) as watch:
        load = measured(
            setup, setup.server, calls, args.contention_clients, report, "approve (contention)"
        )
    statuses = load.statuses()
    refused = [
        a
        for a in load.answers
        if a.status == 409
        and [e.get("guard") for e in a.body.get("errors", [])] == ["budget_available"]
    ]
    approved = [a for a in load.answers if a.status == 200]
    wrong = len(load.answers) - len(approved) - len(refused)
    unexpected(load, {200, 409}, "approve", report)
    with setup.context.db.transaction() as session:
        stored = session.get(Program, program_id)
        ledger = ledger_totals(session, program_id)
        amounts = dict(
            session.execute(
                select(Grant.id, Grant.amount).where(Grant.program_id == program_id)
            ).all()
        )
        stages = Counter(session.scalars(select(Grant.stage).where(Grant.program_id == program_id)))
    committed = stored.reserved + stored.disbursed
    left = stored.total_budget - committed
    approved_sum = sum(amounts[uuid.UUID(a.tag)] for a in approved)
    # Nothing is released during the race, so what is left now was left at every refusal.
    refused_with_money_left = sum(amounts[uuid.UUID(a.tag)] <= left for a in refused)
    never_over = watch.overdrawn == 0 and committed <= stored.total_budget
    report.check(
        "Contention outcome",
        f"{len(approved):,} approved, {len(refused):,} refused (409 budget_available), "
        f"{wrong} other answers {dict(statuses)}; stages now {dict(stages)}",
    )
    report.check(
        "Contention budget",
        f"total {stored.total_budget:,}; reserved {stored.reserved:,} + disbursed "
        f"{stored.disbursed:,}; approved amounts {approved_sum:,}; ledger {ledger}; "
        f"left {left:,}; refused although the money left covered them: "
        f"{refused_with_money_left}; reserved+disbursed over total in {watch.overdrawn} of "
        f"{watch.samples:,} samples read during the race (most seen {watch.most:,})",
    )
    floor = baselines.reads[args.contention_clients]
    report.compare(
        f"Approvals of one programme ({len(ids):,} requests, {args.contention_clients} threads)",
        f"{load.summary()} ({len(approved) / load.seconds:,.0f} approved/s); "
        f"{len(approved):,} approved, {len(refused):,} refused, {wrong} errors; "
        f"reserved+disbursed at most {max(watch.most, committed):,} of {stored.total_budget:,} "
        f"({'never over' if never_over else 'OVER THE TOTAL'})",
        floor.summary(),
        ratios(load, floor),
    )


def measure_decree(setup, ids: list[uuid.UUID], baselines: Baselines, args, report) -> None:
    """One POST /api/v1/decrees approving every verified application of the decree programme."""
    body = {
        "number": "SK-460/1/UEP-KALTIM/2026",
        "decree_date": date.today().isoformat(),
        "signer": "Kepala Dinas Sosial Provinsi Kalimantan Timur",
        "grant_ids": [str(i) for i in ids],
    }
    meter = cpu_meter(setup, setup.server)
    started = time.perf_counter()
    try:
        response = requests.post(
            f"{setup.server.base_url}/api/v1/decrees",
            json=body,
            headers=auth(setup, "kepala_dinas"),
            timeout=900,
        )
        seconds = time.perf_counter() - started
        status = response.status_code
        answer = response.json() if status == 200 else problem_of(response)
    except requests.RequestException as exc:
        seconds = time.perf_counter() - started
        status, answer = 0, {"detail": f"{type(exc).__name__}: {str(exc)[:200]}"}
    cpu = meter.stop()
    server_cpu = cpu.roles["gunicorn"] + cpu.roles["PostgreSQL"]
    report.figure(
        f"decree of {len(ids):,}",
        f"HTTP {status} after {seconds:.1f} s ({len(ids) / seconds:,.0f} approvals/s)",
    )
    report.figure("CPU during the decree", cpu.summary())
    timeouts = worker_timeouts(setup.server)
    if timeouts:
        report.note(
            f"gunicorn killed a worker for running past its timeout ({timeouts}x); the decree "
            "had no answer. --gunicorn-timeout raises it."
        )
    elif seconds > DEPLOYED_WORKER_TIMEOUT:
        report.note(
            f"the decree took {seconds:.0f} s: as deployed (gunicorn's default "
            f"{DEPLOYED_WORKER_TIMEOUT} s worker timeout) its worker would have been killed "
            "and the decree refused"
        )
    if status == 200:
        decree = answer["decree"]
        outcome = f"{decree['approved_count']:,} approved, {decree['failed_count']:,} failed"
    else:
        outcome = f"no decree: {json.dumps(answer)[:300]}"
    with setup.context.db.transaction() as session:
        approved = session.scalar(
            select(func.count())
            .select_from(Grant)
            .where(Grant.id.in_(ids), Grant.stage == "approved")
        )
        decrees = session.scalar(select(func.count()).select_from(Decree))
        events = session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(
                OutboxEvent.event_type == "grant.stage_changed",
                OutboxEvent.envelope["payload"]["decree_id"].astext.in_(
                    select(func.cast(Decree.id, String))
                ),
            )
        )
    report.check(
        "Decree outcome",
        f"HTTP {status}: {outcome}; stored: {approved:,} applications approved, {decrees} decree, "
        f"{events:,} grant.stage_changed events naming it",
    )
    floor = baselines.sequential
    report.compare(
        f"Decree of {len(ids):,} verified applications (one request)",
        f"{seconds:.1f} s, HTTP {status} ({seconds / len(ids) * 1000:.2f} ms per application; "
        f"server CPU {server_cpu / len(ids) * 1000:.2f} ms per application)",
        f"{len(floor.answers):,} requests from one client: {floor.seconds:.1f} s "
        f"({floor.seconds / len(floor.answers) * 1000:.2f} ms each; server CPU "
        f"{floor.server_cpu_ms():.2f} ms/request)",
        f"time {ratio(seconds, floor.seconds / len(floor.answers) * len(ids))}, "
        f"CPU {ratio(server_cpu / len(ids) * 1000, floor.server_cpu_ms())}",
    )


def check_trail(setup: Setup, report: Report) -> None:
    """Every application's audit chain, as `kube grants verify-audit` would read it."""
    with setup.context.db.transaction() as session:
        records = session.scalar(select(func.count()).select_from(AuditRecord))
        started = time.perf_counter()
        broken = list(verify_chains(session))
        seconds = time.perf_counter() - started
    report.check(
        "Audit trail",
        f"{records:,} records, {len(broken)} broken chains (verified in {seconds:.1f} s)",
    )


# --- The run --------------------------------------------------------------------------------


def print_summary(report: Report, facts: list[tuple[str, str]], args, baselines) -> None:
    """The closing Markdown tables: each figure beside its baseline, then checks and machine."""
    print("\n## Results\n")
    print(
        f"{args.applications:,} applications through the API, a decree of "
        f"{args.decree_size:,}; {args.gunicorn_workers} gunicorn sync workers per server. "
        "Baseline: a bare Flask route doing one primary-key SELECT of an application on the "
        "same PostgreSQL, served the same way. Ratio: the grant service over the baseline.\n"
    )
    print("| Figure | Grant service | Baseline (bare Flask, one PK SELECT) | Ratio |")
    print("|---|---|---|---|")
    for c in report.comparisons:
        print(f"| {c.name} | {c.figure} | {c.baseline} | {c.ratio} |")
    if baselines is not None and baselines.writes is not None:
        print(
            f"\nFor scale, the same bare route doing one primary-key UPDATE and commit: "
            f"{baselines.writes.summary()} ({args.concurrency} threads)."
        )
    print("\n| Check | |\n|---|---|")
    for name, value in report.checks:
        print(f"| {name} | {value} |")
    print("\n| Machine | |\n|---|---|")
    for name, value in facts:
        print(f"| {name} | {value} |")
    for message in report.notes:
        print(f"\nNOTE: {message}")


def benchmark(args: argparse.Namespace, stack: ExitStack, report: Report):
    """Every step in order (cleanup goes on `stack` as each resource appears)."""
    rng = random.Random(args.seed)
    with step("1. Database, migrations, app, servers"):
        setup = prepare(args, stack, report)
    with step(f"2. {max(args.applications, args.decree_size):,} groups projected"):
        groups = project_groups(setup, max(args.applications, args.decree_size), rng, report)
    workflow_groups = groups[: args.applications]
    decree_groups = groups[: args.decree_size]
    half = sum(AMOUNT_PER_MEMBER * g.members for g in workflow_groups) // 2
    full = sum(AMOUNT_PER_MEMBER * g.members for g in decree_groups)
    with step("3. Programmes (API), the decree's verified applications (bulk SQL)"):
        workflow_program, decree_program = create_programs(setup, half, full)
        started = time.perf_counter()
        decree_ids = insert_verified(setup, decree_program, decree_groups)
        report.figure(
            "Verified applications inserted (setup)",
            f"{len(decree_ids):,} in {time.perf_counter() - started:.1f} s",
        )
    with step(f"4. {args.applications:,} applications created through the API; VACUUM"):
        ids = create_applications(setup, workflow_program, workflow_groups, args, report)
        vacuum_analyze(setup)
    with step("5. Baseline: bare Flask, one primary-key SELECT"):
        baselines = measure_baselines(setup, ids, args, rng, report)
    with step(f"6. Transitions: submit and verify {len(ids):,} applications"):
        measure_transitions(setup, ids, baselines, args, report)
    with step(f"7. Approvals racing for one budget, {args.contention_clients} clients"):
        measure_contention(setup, workflow_program, ids, baselines, args, report)
    with step(f"8. Decree of {len(decree_ids):,} verified applications"):
        measure_decree(setup, decree_ids, baselines, args, report)
    with step("9. Audit trail"):
        check_trail(setup, report)
    for server in (setup.server, setup.baseline):
        if server.process.poll() is not None:
            report.note(f"{server.application_name} exited during the run")
    return [*setup.facts, ("Load average at end (1/5/15 min)", load_average())], baselines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, clean up whatever happens, then print the summary."""
    args = parse_args(argv)
    stop_on_sigterm()
    report = Report()
    # The stack is the `finally`: servers, the app's connections, the database, the run's
    # Redis keys and a private Redis are released in reverse order of creation.
    with ExitStack() as stack:
        try:
            facts, baselines = benchmark(args, stack, report)
        finally:
            print("\n== 10. Cleanup: servers, app connections, database, Redis keys")
    print_summary(report, facts, args, baselines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
