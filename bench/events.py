"""Event path benchmark: from a registry change's answer to the change being visible in the
notifications service, beside a bare Celery round trip over the same Redis, in one run.

Creates its own registry and notifications databases and Redis key prefix, and starts real
processes: the registry under gunicorn, its outbox relay (`kube relay registry`), one
notifications worker (prefork, concurrency 1, as `make run` starts it) and, for the
baseline, a Celery worker of one trivial task (bench/celery_probe.py). Then, one at a time,
it adds a member to a group through the API and polls the notifications database until
the member is among the group's contacts (the registry's `member.added` event, relayed,
consumed and committed). Bare round trips run between the changes, so both see the same
load. Figures are printed, never asserted; one table closes the output.

    .venv/bin/python bench/events.py --help
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests
from notifications import (
    Child,
    Comparison,
    Prober,
    Report,
    answers,
    delete_keys,
    print_tables,
    spread,
    start_child,
    start_worker,
    task_runtimes,
    wait_for,
)
from registry import (
    PersonFactory,
    add_server_arguments,
    load_average,
    machine_facts,
    percentile,
    postgres_server,
    redis_server,
    step,
    stop_on_sigterm,
    synthetic_regions,
    tagged_url,
)
from sqlalchemy import select, text

from kube.catalogue import app_target, worker_target
from kube.localinfra import create_database, database_url, drop_database, free_port
from kube.localrun import gunicorn_command
from services.notifications.models import EVENT_TABLES as NOTIFICATION_EVENTS
from services.notifications.service import SERVICE as NOTIFICATIONS
from services.registry.models import EVENT_TABLES as REGISTRY_EVENTS
from services.registry.regions import load_regions
from services.registry.service import SERVICE as REGISTRY
from shared.auth import issue_token
from shared.config import load_settings
from shared.migrate import upgrade
from shared.service import ServiceContext, build_context

ROOT = Path(__file__).resolve().parent.parent
SETUP = "kube-bench-setup"
WORKER = "kube-bench-notifications-worker"
RELAY = "kube-bench-relay"
API = "kube-bench-registry"
DISTRICT = "647201"  # a district of Kota Samarinda, in the synthetic region table
VILLAGE = f"{DISTRICT}1001"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--changes", type=int, default=200, help="members added, one at a time (%(default)s)"
    )
    parser.add_argument(
        "--round-trips",
        type=int,
        default=2,
        help="bare Celery round trips before each change (default %(default)s)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=0.1,
        help="seconds between a change becoming visible and the next round trips "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--gunicorn-workers",
        type=int,
        default=2,
        help="gunicorn sync workers of the registry (default %(default)s)",
    )
    add_server_arguments(parser)
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    return parser.parse_args(argv)


@dataclass
class Setup:
    registry: ServiceContext
    notifications: ServiceContext
    env: dict[str, str]
    worker: Child
    probe: Child
    relay: Child
    api: Child
    api_url: str
    token: str
    facts: list[tuple[str, str]]

    @property
    def prefix(self) -> str:
        return self.env["KUBE_QUEUE_PREFIX"]


def bench_environment(db_urls: dict[str, str], redis_url: str, prefix: str) -> dict[str, str]:
    import base64
    import secrets

    return {
        "REGISTRY_DATABASE_URL": db_urls["registry"],
        "NOTIFICATIONS_DATABASE_URL": db_urls["notifications"],
        "REDIS_URL": redis_url,
        "KUBE_QUEUE_PREFIX": prefix,
        "KUBE_JWT_SECRET": secrets.token_hex(32),
        "KUBE_JWT_AUDIENCE": "",
        "KUBE_JWT_ISSUER": "",
        "KUBE_DATA_KEYS": "bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "KUBE_LOOKUP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        # The notifications worker needs providers' settings to start; nothing is sent here.
        "SMS_PROVIDER": "file",
        "SMS_FILE_DIR": tempfile.mkdtemp(prefix="kube-bench-sms-"),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),
        "SMTP_SECURITY": "none",
        "SMTP_SENDER": "kube-bench@localhost",
        "LOG_LEVEL": "INFO",
        "BENCH_PROBE_QUEUE": f"{prefix}.probe",
    }


def prepare(args: argparse.Namespace, stack: ExitStack, report: Report) -> Setup:
    run_id = uuid.uuid4().hex[:8]
    prefix = f"kubebench-{run_id}"
    server_url = postgres_server(args.database_url)
    redis_url = redis_server(args.redis_url, stack)
    stack.callback(delete_keys, redis_url, prefix)
    db_urls = {}
    for service in (REGISTRY, NOTIFICATIONS):
        name = f"kube_bench_{run_id}_{service.name}"
        create_database(server_url, name, exist_ok=False)
        db_urls[service.name] = database_url(server_url, name)
        if args.keep:
            stack.callback(print, f"Kept the database: {db_urls[service.name]}")
        else:
            stack.callback(drop_database, server_url, name)
        upgrade(service.migrations, db_urls[service.name])
    print(f"    databases kube_bench_{run_id}_*, Redis key prefix {prefix}", flush=True)
    log_dir = Path(tempfile.mkdtemp(prefix="kube-bench-events-"))
    if args.keep:
        stack.callback(print, f"Kept the logs: {log_dir}")
    else:
        stack.callback(shutil.rmtree, log_dir, ignore_errors=True)
    env = bench_environment(db_urls, redis_url, prefix)
    stack.callback(shutil.rmtree, env["SMS_FILE_DIR"], ignore_errors=True)
    tagged = {name: tagged_url(url, SETUP) for name, url in db_urls.items()}
    os.environ.update({**env, **{f"{n.upper()}_DATABASE_URL": u for n, u in tagged.items()}})
    contexts = {}
    for service in (REGISTRY, NOTIFICATIONS):
        contexts[service.name] = build_context(service, load_settings(service.name))
        stack.callback(contexts[service.name].db.dispose)
    load_regions(contexts["registry"].db.engine, synthetic_regions())
    if os.getloadavg()[0] > 0.5:
        report.note(
            f"the 1-minute load average was {os.getloadavg()[0]:.2f} at the start: other work "
            "is sharing the CPUs"
        )

    def with_db(service: str, application_name: str) -> dict[str, str]:
        key = f"{service.upper()}_DATABASE_URL"
        return {**env, key: tagged_url(db_urls[service], application_name)}

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
        [sys.executable, "-m", "kube.cli", "relay", "registry"],
        with_db("registry", RELAY),
        log_dir,
        stack,
    )
    api_port = free_port()
    api = start_child(
        "registry-api",
        gunicorn_command(
            app_target("registry"), f"127.0.0.1:{api_port}", workers=args.gunicorn_workers
        ),
        with_db("registry", API),
        log_dir,
        stack,
    )
    api_url = f"http://127.0.0.1:{api_port}"
    wait_for(api, lambda: answers(f"{api_url}/readyz"), "the registry")
    relay.check()
    print(f"    registry {api_url}; logs {log_dir}", flush=True)
    logging.getLogger().setLevel(logging.WARNING)
    token = issue_token(
        env["KUBE_JWT_SECRET"], sub="pendamping-bench", roles=["pendamping"], region="6472"
    )
    return Setup(
        contexts["registry"],
        contexts["notifications"],
        env,
        worker,
        probe,
        relay,
        api,
        api_url,
        token,
        machine_facts(contexts["notifications"]),
    )


def create_group(setup: Setup, people: PersonFactory, session: requests.Session) -> str:
    response = session.post(
        f"{setup.api_url}/api/v1/groups",
        json={"name": "KUBE Tempe Maju Bersama", "region_code": VILLAGE, "business_type": "tempe"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["id"]


def add_member(setup: Setup, people: PersonFactory, session, group_id: str) -> tuple[float, str]:
    """Add an anggota; the wall-clock time its answer arrived, and its id."""
    person = people.person(DISTRICT, "anggota")
    person.pop("gender", None)
    person.pop("birth_date", None)
    response = session.post(
        f"{setup.api_url}/api/v1/groups/{group_id}/members", json=person, timeout=10
    )
    answered = time.time()
    if response.status_code != 201:
        raise RuntimeError(f"adding a member answered {response.status_code}: {response.text}")
    return answered, response.json()["id"]


def visible_at(connection, member_id: str, timeout: float = 10) -> float:
    """Poll the notifications database until the member is a contact; the wall-clock time."""
    deadline = time.monotonic() + timeout
    statement = text("SELECT 1 FROM contacts WHERE member_id = :id")
    while True:
        if connection.execute(statement, {"id": member_id}).first() is not None:
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError(f"member {member_id} not visible in notifications in {timeout} s")
        time.sleep(0.0005)


@dataclass
class Change:
    answered: float
    visible: float
    member_id: str


def measure(setup: Setup, args: argparse.Namespace, report: Report) -> None:
    people = PersonFactory(random.Random(7))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {setup.token}"
    prober = Prober(setup)
    changes: list[Change] = []
    # A group holds at most 20 members: a new group every 20 changes.
    group_id = None
    engine = setup.notifications.db.engine.execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for i in range(args.changes + 5):
            if i % 20 == 0:
                group_id = create_group(setup, people, session)
                time.sleep(0.2)
            for _ in range(args.round_trips):
                prober.once()
            answered, member_id = add_member(setup, people, session, group_id)
            visible = visible_at(connection, member_id)
            if i >= 5:  # the first few warm the processes up
                changes.append(Change(answered, visible, member_id))
            time.sleep(args.pause)
    latencies = [c.visible - c.answered for c in changes]
    round_trips = prober.round_trips[5 * args.round_trips :]
    rt99 = percentile(sorted(round_trips), 99)
    got99 = percentile(sorted(latencies), 99)
    bound = 3 * rt99 + 0.010
    report.compare(
        Comparison(
            f"Member added -> visible in notifications ({len(changes)} changes)",
            spread(latencies),
            f"{spread(round_trips)} (trivial Celery task, same Redis)",
            f"p99 {got99 / rt99:.1f}x",
            f"p99 <= 3 x {rt99 * 1000:.1f} ms + 10 ms = {bound * 1000:.1f} ms: "
            + ("met" if got99 <= bound else f"missed by {(got99 - bound) * 1000:.1f} ms"),
        )
    )
    explain(setup, changes, report)


def explain(setup: Setup, changes: list[Change], report: Report) -> None:
    """Where the time goes, from the rows each step wrote: the relay's publish, the worker
    taking the event, its transaction."""
    outbox = REGISTRY_EVENTS.outbox
    wanted = {c.member_id for c in changes}
    with setup.registry.db.transaction() as session:
        events = {}
        for row in session.execute(
            select(
                outbox.id,
                outbox.published_at,
                outbox.envelope[("payload", "member", "member_id")].as_string().label("member"),
            ).where(outbox.event_type == "member.added")
        ):
            if row.member in wanted:
                events[row.member] = (row.id, row.published_at)
    inbox = NOTIFICATION_EVENTS.inbox
    with setup.notifications.db.transaction() as session:
        handled = dict(session.execute(select(inbox.event_id, inbox.handled_at)).all())
    ran = task_runtimes(setup.worker, "notifications.handle_event")
    stages: dict[str, list[float]] = {}
    for c in changes:
        event_id, published_at = events.get(c.member_id, (None, None))
        if event_id is None or published_at is None or event_id not in handled:
            continue
        marks = [
            ("answer -> relay published", c.answered, published_at.timestamp()),
            (
                "published -> notifications worker handling (broker, envelope check)",
                published_at.timestamp(),
                handled[event_id].timestamp(),
            ),
            (
                "handling -> visible (the projection, commit)",
                handled[event_id].timestamp(),
                c.visible,
            ),
        ]
        for name, begin, end in marks:
            stages.setdefault(name, []).append(end - begin)
        if f"{event_id}:notifications" in ran:
            stages.setdefault("the handle_event task's own run (Celery's log)", []).append(
                ran[f"{event_id}:notifications"]
            )
    for name, values in stages.items():
        report.detail(f"Event path: {name}", spread(values))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    report = Report()
    with ExitStack() as stack:
        try:
            with step("1. Databases, registry API, relay, notifications worker, probe worker"):
                setup = prepare(args, stack, report)
            with step(f"2. {args.changes} members added, each until visible in notifications"):
                measure(setup, args, report)
            for child in (setup.worker, setup.probe, setup.relay, setup.api):
                if child.process.poll() is not None:
                    report.note(f"{child.name} exited during the run")
            facts = [*setup.facts, ("Load average at end (1/5/15 min)", load_average())]
        finally:
            print("\n== 3. Cleanup: processes, connections, databases, Redis keys")
    print_tables(
        report,
        facts,
        f"{args.changes} members added one at a time through the registry API "
        f"({args.gunicorn_workers} gunicorn workers), `kube relay registry` and one "
        f"notifications worker; {args.round_trips} bare Celery round trips before each.",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
