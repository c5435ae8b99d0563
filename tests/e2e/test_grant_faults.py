"""Faults on the grants -> notifications path, on the same real processes as the journeys:
workers killed, Redis stopped, the SMS gateway failing (with and without a failover gateway)
and database connections cut, each during a burst of transitions made through the client.

Each test counts grants' outbox against the notification service's inbox, and the SMS the
gateway received against the SMS the transitions call for (never the projections)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from kube_client import ServiceUnavailable, TransportError

from harness import (
    NOTIFIED,
    SETTLE_SECONDS,
    Staff,
    apply,
    documents,
    event_tally,
    import_groups,
    make_program,
    report,
    running_platform,
    sms_tally,
    wait_known_to_grants,
)
from support import RUN_ID, wait_until

pytestmark = pytest.mark.e2e

VILLAGE = "6472011001"
# Five transitions per application; three of them tell every member by SMS.
CYCLE = ("submit", "verify", "return", "submit", "verify")
CYCLE_SMS = ("grant.submitted", "grant.returned", "grant.submitted")
# Applications each test uses (one import makes the groups of them all).
NEEDS = {"kill": 40, "redis": 20, "sms_down": 10, "failover": 10, "postgres": 6}


@pytest.fixture(scope="module")
def platform(postgres_server, sms_gateway, mail_server, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("faults")
    with running_platform(
        postgres_server, log_dir, f"{RUN_ID}f", sms=sms_gateway, mail=mail_server
    ) as running:
        yield running


@pytest.fixture(scope="module")
def staff(platform):
    return Staff(platform)


@pytest.fixture(scope="module")
def drafts(platform, staff):
    """A draft application per group, handed out to the tests by `take(n)`."""
    docs = documents(staff)["regional"]
    groups = import_groups(staff, f"KUBE Uji {uuid.uuid4().hex[:6]}", sum(NEEDS.values()), VILLAGE)
    wait_known_to_grants(staff, [g["id"] for g in groups.values()])
    program = make_program(staff, "regional", f"UEP uji gangguan {RUN_ID}")

    def draft(item):
        name, group = item
        return {
            "name": name,
            "phones": group["phones"],
            "grant": apply(staff, program, group["id"], docs),
        }

    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(draft, groups.items()))

    def take(n: int) -> list[dict]:
        taken, made[:] = made[:n], made[n:]
        return taken

    take.docs = docs
    return take


def step(staff: Staff, grant: dict, action: str, docs: list[str]) -> dict:
    """One transition as a field app makes it: retried with the same Idempotency-Key while
    the platform cannot answer, so it acts once however many copies arrive."""
    data = comment = None
    if action == "verify":
        data = {"checklist": dict.fromkeys(docs, True), "minutes_number": "BA-9/VERVAL"}
    if action == "return":
        comment = "Proposal usaha perlu dilengkapi."
    key = str(uuid.uuid4())
    deadline = time.monotonic() + 120
    while True:
        try:
            return staff.take(grant, action, data, comment, idempotency_key=key)
        except (ServiceUnavailable, TransportError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def burst(
    staff: Staff, items: list[dict], docs: list[str], actions=CYCLE, fault: Callable | None = None
) -> list[str]:
    """Take `actions` on every application (four at a time), starting `fault` in the
    background once a third of the transitions are made; return the applications' ids."""
    total = len(items) * len(actions)
    done = Counter()
    started = threading.Event()
    faults: list[threading.Thread] = []
    lock = threading.Lock()

    def walk(item):
        grant = item["grant"]
        for action in actions:
            grant = step(staff, grant, action, docs)
            with lock:
                done["transitions"] += 1
                if fault and not started.is_set() and done["transitions"] >= total // 3:
                    started.set()
                    faults.append(threading.Thread(target=fault))
                    faults[0].start()
        item["grant"] = grant

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(walk, items))
    for thread in faults:
        thread.join()
    assert done["transitions"] == total
    return [item["grant"]["id"] for item in items]


def expected_sms(items: list[dict], kinds=CYCLE_SMS) -> Counter:
    expected = Counter()
    for item in items:
        for phone in item["phones"]:
            for kind, n in Counter(kinds).items():
                expected[(phone, item["name"], kind)] += n
    return expected


def settle(platform, gateway, items, grant_ids, what: str, kinds=CYCLE_SMS, **extra) -> dict:
    """Wait (bounded) until every expected SMS reached `gateway`, then a moment for any second
    copy; print and return the counts."""
    expected = expected_sms(items, kinds)
    started = time.monotonic()
    try:
        wait_until(
            lambda: sms_tally(gateway.received, expected)["lost"] == 0,
            timeout=SETTLE_SECONDS,
            interval=1,
        )
        time.sleep(3)
    finally:
        sms = sms_tally(gateway.received, expected)
        events = event_tally(platform, grant_ids, wait=False)
        report(
            what,
            sent=sms["sent"],
            delivered=sms["delivered"],
            duplicates=sms["duplicates"],
            lost=sms["lost"],
            unexpected=sms["unexpected"],
            events=events,
            messages=dict(platform.message_statuses(grant_ids)),
            settled_seconds=f"{time.monotonic() - started:.0f}",
            **extra,
        )
    return {"sms": sms, "events": events}


def assert_exactly_once(counts: dict) -> None:
    sms, events = counts["sms"], counts["events"]
    assert sms["delivered"] == sms["sent"], sms
    assert sms["duplicates"] == sms["lost"] == sms["unexpected"] == 0, sms
    assert events["applied"] == events["sent"], events
    assert events["dead_lettered"] == events["duplicates"] == events["lost"] == 0, events


def test_a_worker_of_each_service_killed_mid_burst_sends_every_sms_once(platform, staff, drafts):
    items = drafts(NEEDS["kill"])

    def fault():
        for service in ("registry", "grants"):
            platform.restart(f"{service}-worker", pause=2)
        # The notification worker dies inside a transaction of its own (the messages table
        # held, so it is surely mid-event or mid-delivery), as on a lost machine.
        with platform.connect("notifications") as blocker, platform.connect("notifications") as eye:
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE messages IN EXCLUSIVE MODE")
            wait_until(
                lambda: eye.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ).fetchone()[0],
                timeout=30,
            )
            platform.processes["notifications-worker"].kill_all()
            blocker.execute("ROLLBACK")
        time.sleep(2)
        worker = platform.processes["notifications-worker"]
        worker.start()
        worker.wait_ready()

    ids = burst(staff, items, drafts.docs, fault=fault)
    counts = settle(platform, platform.sms, items, ids, "workers killed", transitions=len(ids) * 5)
    assert_exactly_once(counts)


def test_redis_stopped_for_five_seconds_mid_burst_loses_no_event_and_no_sms(
    platform, staff, drafts
):
    items = drafts(NEEDS["redis"])
    ids = burst(staff, items, drafts.docs, fault=lambda: platform.stop_redis(5))
    # Every transition committed (burst checks each answer): its events are in the outbox.
    assert len(platform.grant_events(ids, NOTIFIED)) == len(ids) * len(CYCLE)
    assert_exactly_once(
        settle(platform, platform.sms, items, ids, "Redis stopped", transitions=len(ids) * 5)
    )


def test_an_sms_gateway_failing_for_thirty_seconds_delivers_everything_once_after(
    platform, staff, drafts
):
    items = drafts(NEEDS["sms_down"])
    attempts_before = len(platform.sms.attempts)
    platform.sms.outage(30)
    try:
        ids = burst(staff, items, drafts.docs, actions=("submit",))
        counts = settle(
            platform,
            platform.sms,
            items,
            ids,
            "SMS gateway answering 500 for 30 s",
            kinds=("grant.submitted",),
            refused_with_500=sum(
                1 for _, _, s in platform.sms.attempts[attempts_before:] if s == 500
            ),
        )
    finally:
        platform.sms.end_outage()
    assert_exactly_once(counts)
    assert platform.message_statuses(ids)["failed"] == 0


def test_with_a_failover_gateway_the_second_gateway_carries_the_messages(platform, staff, drafts):
    items = drafts(NEEDS["failover"])
    platform.use_failover(True)
    platform.sms.outage(30)
    try:
        ids = burst(staff, items, drafts.docs, actions=("submit",))
        counts = settle(
            platform,
            platform.failover,
            items,
            ids,
            "failover gateway while the first answers 500",
            kinds=("grant.submitted",),
            on_first_gateway=sms_tally(
                platform.sms.received, expected_sms(items, ("grant.submitted",))
            )["delivered"],
        )
    finally:
        platform.sms.end_outage()
        platform.use_failover(False)
    assert_exactly_once(counts)
    first = sms_tally(platform.sms.received, expected_sms(items, ("grant.submitted",)))
    assert first["delivered"] == first["duplicates"] == 0


def test_cut_database_connections_answer_503_leave_nothing_half_written_and_recover(
    platform, staff, drafts
):
    items = drafts(NEEDS["postgres"])
    api = platform.processes["grants-api"]
    workers_before = {p.pid for p in api.children()}
    impatient = Staff(platform)
    impatient.platform = _NoRetries(platform)
    answers: list = []

    def submit(item):
        try:
            answers.append(impatient.take(item["grant"], "submit"))
        except Exception as exc:  # what the client raised is the outcome under test
            answers.append(exc)

    with platform.connect("grants") as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE grants IN EXCLUSIVE MODE")
        threads = [threading.Thread(target=submit, args=(item,)) for item in items]
        for thread in threads:
            thread.start()
        # Each request (as many at a time as gunicorn has workers) waits inside its
        # transaction for the application's row; its connection is cut there.
        cut, deadline = 0, time.monotonic() + 60
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            cut += platform.terminate_backends(["grants"], "AND wait_event_type = 'Lock'")
            time.sleep(0.2)
        blocker.execute("ROLLBACK")

    ids = [item["grant"]["id"] for item in items]
    outcomes = Counter(type(a).__name__ for a in answers)
    problems = [a for a in answers if isinstance(a, Exception)]
    # Nothing half-written: each application is as it was, with no step, history or event.
    after = {
        g["id"]: g
        for g in staff["auditor"].grants.iter_grants(program_id=items[0]["grant"]["program_id"])
        if g["id"] in ids
    }
    untouched = [
        i
        for i in ids
        if after[i]["stage"] == "draft"
        and after[i]["version"]
        == next(it["grant"]["version"] for it in items if it["grant"]["id"] == i)
        and len(staff["auditor"].grants.history(i)) == 1
    ]
    events_before = len(platform.grant_events(ids, NOTIFIED))
    # The same processes answer again, without a restart.
    for item in items:
        item["grant"] = staff.take(item["grant"], "submit")
    counts = settle(
        platform,
        platform.sms,
        items,
        ids,
        "database connections cut",
        kinds=("grant.submitted",),
        backends_cut=cut,
        answers=dict(outcomes),
        untouched=len(untouched),
    )
    assert all(isinstance(p, ServiceUnavailable) for p in problems), [
        (type(p).__name__, getattr(p, "status", None), str(p)[:200]) for p in problems
    ]
    assert problems and all(p.status == 503 and p.title for p in problems)
    assert len(untouched) == len(ids) - (len(answers) - len(problems))
    assert events_before == len(answers) - len(problems)
    assert {p.pid for p in api.children()} == workers_before
    assert_exactly_once(counts)


class _NoRetries:
    """The platform, but its clients give up at the first 503 (to see the answer itself)."""

    def __init__(self, platform):
        self._platform = platform

    def client(self, *args, **kwargs):
        return self._platform.client(*args, max_retries=0, **kwargs)
