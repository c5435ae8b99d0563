"""No event lost, none applied twice: the platform's real processes (the registry under
gunicorn, the consumers' Celery workers, the relay, the scheduler) on their own databases and
their own Redis, with the shipped default settings, while processes are killed, Redis is
stopped and database connections are cut during bursts of events.

Each test ends by comparing what the producer wrote (its outbox) with what every consumer
recorded (its inbox), not the projections, which a later snapshot of the same group could
make look complete."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable

import psutil
import pytest
import requests

from shared.tokens import issue_token

from harness import SETTLE_SECONDS, Platform, running_platform
from registry_factories import member_payload
from support import JWT_SECRET, RUN_ID, wait_until

pytestmark = pytest.mark.e2e

CONSUMERS = ("grants", "notifications")


@pytest.fixture(scope="module")
def chaos(postgres_server, tmp_path_factory):
    with running_platform(postgres_server, tmp_path_factory.mktemp("chaos"), f"{RUN_ID}c") as p:
        yield p


def _post(chaos: Platform, session: requests.Session, url: str, body: dict) -> dict:
    """A field app's POST: the same Idempotency-Key on every retry, until it gets an answer."""
    key = str(uuid.uuid4())
    deadline = time.monotonic() + 120
    response = None
    while True:
        try:
            response = session.post(url, json=body, headers={"Idempotency-Key": key}, timeout=10)
            chaos.statuses.append(response.status_code)
            if response.status_code < 500 and response.status_code != 409:
                response.raise_for_status()
                return response.json()
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            last = (response.status_code, response.text[:300]) if response is not None else None
            raise AssertionError(f"POST {url} kept failing; last answer {last}")
        time.sleep(0.3)


def burst(chaos: Platform, fault: Callable[[], None], groups: int = 30, members: int = 9) -> list:
    """Register `groups` groups of `members` members (one event each), starting `fault`
    in the background once a third of them are written; return the groups' ids."""
    session = requests.Session()
    token = issue_token(JWT_SECRET, sub="chaos-field-app", roles=["pendamping"], region="6472")
    session.headers["Authorization"] = f"Bearer {token}"
    api = f"{chaos.urls['registry']}/api/v1"
    ids, worker, events = [], None, 0
    for index in range(groups):
        group = _post(
            chaos,
            session,
            f"{api}/groups",
            {"name": f"KUBE Chaos {uuid.uuid4().hex[:8]}", "region_code": "6472011001"},
        )
        ids.append(group["id"])
        for _ in range(members):
            _post(chaos, session, f"{api}/groups/{group['id']}/members", member_payload())
        events += members + 1
        if worker is None and index >= groups // 3:
            worker = threading.Thread(target=fault)
            worker.start()
    worker.join()
    return ids


def settle(chaos: Platform, group_ids: list[str]) -> dict:
    """Wait until every consumer's inbox holds every event the producer wrote about these
    groups; print and return sent, applied, dead-lettered, duplicates and lost per consumer."""
    with chaos.connect("registry") as conn:
        sent = {
            str(row[0])
            for row in conn.execute(
                "SELECT id FROM outbox_events "
                "WHERE envelope->'payload'->'group'->>'group_id' = ANY(%s)",
                (group_ids,),
            )
        }

    def counts() -> dict:
        report = {}
        for consumer in CONSUMERS:
            with chaos.connect(consumer) as conn:
                applied = {
                    str(r[0])
                    for r in conn.execute(
                        "SELECT event_id FROM processed_events WHERE event_id = ANY(%s::uuid[])",
                        (list(sent),),
                    )
                }
                dead = {
                    str(r[0])
                    for r in conn.execute(
                        "SELECT event_id FROM dead_letters WHERE event_id = ANY(%s::uuid[])",
                        (list(sent),),
                    )
                }
            report[consumer] = {
                "sent": len(sent),
                "applied": len(applied),
                "dead_lettered": len(dead),
                # The inbox's primary key makes a second application impossible; an event
                # both applied and dead-lettered would be the one way to act twice.
                "duplicates": len(applied & dead),
                "lost": len(sent - applied - dead),
            }
        return report

    started = time.monotonic()
    try:
        wait_until(
            lambda: all(r["lost"] == 0 for r in counts().values()),
            timeout=SETTLE_SECONDS,
            interval=1,
        )
    finally:
        report = counts()
        resent = {consumer: _resent(chaos, consumer) for consumer in CONSUMERS}
        print(
            f"\nsettled in {time.monotonic() - started:.0f} s: {report}; "
            f"sent again by catch-up so far: {resent}"
        )
    return report


def assert_complete(report: dict, at_least: int = 300) -> None:
    for consumer, figures in report.items():
        assert figures["sent"] >= at_least, consumer
        assert figures["applied"] == figures["sent"], (consumer, figures)
        assert figures["dead_lettered"] == figures["duplicates"] == figures["lost"] == 0


def test_a_worker_killed_mid_event_loses_nothing_and_recovers_within_a_minute(chaos):
    worker = chaos.processes["grants-worker"]
    resent_before = _resent(chaos, "grants")

    def fault():
        with chaos.connect("grants") as blocker, chaos.connect("grants") as observer:
            # Hold the projection table so an event is surely mid-transaction when killed.
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE group_projections IN EXCLUSIVE MODE")
            wait_until(
                lambda: observer.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                ).fetchone()[0],
                timeout=30,
            )
            # The whole worker dies at once, as on a lost machine: its message stays
            # unacknowledged in Redis (for the hour of the visibility timeout).
            worker.kill_all()
            blocker.execute("ROLLBACK")
        time.sleep(3)
        worker.start()

    assert_complete(settle(chaos, burst(chaos, fault)))
    # The stranded event came back through the catch-up, not after the broker's hour.
    assert _resent(chaos, "grants") > resent_before


def _resent(chaos: Platform, consumer: str) -> int:
    with chaos.connect(consumer) as conn:
        return conn.execute("SELECT coalesce(sum(resent), 0) FROM event_cursors").fetchone()[0]


def test_a_killed_pool_process_loses_nothing(chaos):
    def fault():
        for service in CONSUMERS:
            with contextlib.suppress(psutil.Error, IndexError):
                chaos.processes[f"{service}-worker"].children()[0].kill()

    assert_complete(settle(chaos, burst(chaos, fault)))


def test_a_killed_relay_loses_nothing(chaos):
    relay = chaos.processes["relay"]

    def fault():
        relay.kill()
        time.sleep(3)
        relay.start()

    assert_complete(settle(chaos, burst(chaos, fault)))


def test_redis_stopped_three_times_for_five_seconds_loses_nothing(chaos):
    def fault():
        for _ in range(3):
            chaos.stop_redis(5)
            time.sleep(2)

    assert_complete(settle(chaos, burst(chaos, fault)))


def test_terminated_database_connections_lose_nothing_and_answer_503_not_500(chaos):
    chaos.statuses.clear()

    def fault():
        for _ in range(5):
            chaos.terminate_backends()
            time.sleep(0.5)

    assert_complete(settle(chaos, burst(chaos, fault)))
    log = chaos.processes["registry-api"].log_path.read_text(errors="replace").splitlines()
    errors = [line for line in log if '"ERROR"' in line or "Traceback" in line][-5:]
    assert 500 not in chaos.statuses, (sorted(set(chaos.statuses)), errors)


def test_a_handler_that_keeps_failing_ends_as_a_dead_letter_replayed_once(chaos):
    """With the shipped retry settings (5 retries, backoff from 2 s): a dead letter, listed,
    replayed by an admin after the cause is fixed, and applied once."""
    poison = f"KUBE Poison {uuid.uuid4().hex[:8]}"
    with chaos.connect("grants") as conn:
        # A real failure inside the real handler's transaction, for this group only.
        conn.execute(
            f"ALTER TABLE group_projections ADD CONSTRAINT refuse_poison CHECK (name <> '{poison}')"
        )
    admin = {
        "Authorization": f"Bearer {issue_token(JWT_SECRET, sub='ops', roles=['admin'], region='*')}"
    }
    field = issue_token(JWT_SECRET, sub="field", roles=["pendamping"], region="6472")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {field}"
    started = time.monotonic()
    group = _post(
        chaos,
        session,
        f"{chaos.urls['registry']}/api/v1/groups",
        {"name": poison, "region_code": "6472011001"},
    )
    letters = f"{chaos.urls['grants']}/api/v1/dead-letters"

    def dead_letter():
        items = requests.get(letters, headers=admin, timeout=5).json()["items"]
        return next((i for i in items if i["envelope"]["payload"]["group"]["name"] == poison), None)

    letter = wait_until(dead_letter, timeout=SETTLE_SECONDS, interval=1)
    print(
        f"\ndead-lettered after {time.monotonic() - started:.0f} s, {letter['attempts']} attempts"
    )
    assert letter["attempts"] == 6  # the first try and KUBE_TASK_MAX_RETRIES (5) retries
    assert "refuse_poison" in letter["error"]
    with chaos.connect("grants") as conn:
        conn.execute("ALTER TABLE group_projections DROP CONSTRAINT refuse_poison")
        assert conn.execute(
            "SELECT count(*) FROM event_attempts WHERE event_id = %s", (letter["event_id"],)
        ).fetchone() == (0,)
    replay = requests.post(f"{letters}/{letter['id']}/replay", headers=admin, timeout=5)
    assert replay.status_code == 202

    def projected():
        response = requests.get(
            f"{chaos.urls['grants']}/api/v1/groups/{group['id']}", headers=admin, timeout=5
        )
        return response.ok and response.json()["name"] == poison

    wait_until(projected, timeout=60, interval=0.5)
    with chaos.connect("grants") as conn:
        assert conn.execute(
            "SELECT count(*) FROM processed_events WHERE event_id = %s", (letter["event_id"],)
        ).fetchone() == (1,)
    lag = requests.get(f"{chaos.urls['grants']}/api/v1/events/lag", headers=admin, timeout=5)
    (registry,) = lag.json()["producers"]
    assert registry["producer"] == "registry" and registry["error"] is None
