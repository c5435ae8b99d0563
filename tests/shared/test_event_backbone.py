"""The event backbone end to end: outbox, relay, Redis, real workers, inbox, dead letters."""

from __future__ import annotations

import json
import os
import signal
import uuid

import psycopg
import pytest
from sqlalchemy import func, select, text

from kube.catalogue import SUBSCRIPTIONS
from kube.localinfra import free_port
from shared.config import load_settings
from shared.events.outbox import CeleryPublisher, Relay
from shared.scope import NATIONWIDE

from support import wait_until

pytestmark = pytest.mark.usefixtures("workers")


def register_group(clients, auth, name, region_code="6472011001"):
    response = clients["registry"].post(
        "/api/v1/groups",
        json={"name": name, "region_code": region_code, "business_type": "tempe"},
        headers=auth("pendamping", region="6472"),
    )
    assert response.status_code == 201, response.json
    return response.json


def scalar(apps, service, sql, **params):
    with apps[service].extensions["kube"].db.transaction() as session:
        return session.execute(text(sql), params).scalar()


def outbox_row(apps, group_id):
    return scalar(
        apps,
        "registry",
        "SELECT id FROM outbox_events WHERE envelope->'payload'->'group'->>'group_id' = :gid",
        gid=group_id,
    )


def projected(apps, group_id):
    return (
        scalar(apps, "grants", "SELECT name FROM group_projections WHERE id = :id", id=group_id),
        scalar(
            apps, "notifications", "SELECT name FROM recipient_groups WHERE id = :id", id=group_id
        ),
    )


def test_committed_event_reaches_every_subscriber_exactly_once(apps, clients, auth, relay, unique):
    name = unique("KUBE Tempe")
    group = register_group(clients, auth, name)
    event_id = outbox_row(apps, group["id"])
    assert event_id is not None

    relay()
    wait_until(lambda: projected(apps, group["id"]) == (name, name))
    relay()  # a second pass has nothing left to send

    assert scalar(
        apps,
        "registry",
        "SELECT published_at IS NOT NULL FROM outbox_events WHERE id = :id",
        id=event_id,
    )
    for service in ("grants", "notifications"):
        assert (
            scalar(
                apps,
                service,
                "SELECT count(*) FROM processed_events WHERE event_id = :id",
                id=event_id,
            )
            == 1
        )


def test_event_carries_the_request_id_as_correlation_id(apps, clients, auth, unique):
    response = clients["registry"].post(
        "/api/v1/groups",
        json={"name": unique(), "region_code": "6472011001"},
        headers={**auth("admin"), "X-Request-ID": "field-app-42"},
    )
    assert response.headers["X-Request-ID"] == "field-app-42"
    correlation = scalar(
        apps,
        "registry",
        "SELECT envelope->>'correlation_id' FROM outbox_events "
        "WHERE envelope->'payload'->'group'->>'group_id' = :gid",
        gid=response.json["id"],
    )
    assert correlation == "field-app-42"


def test_change_whose_transaction_rolls_back_emits_nothing(apps, unique):
    from services.registry.groups import register_group as register
    from services.registry.models import Group

    context = apps["registry"].extensions["kube"]
    outbox = context.tables.outbox
    name = unique()
    with (
        apps["registry"].app_context(),
        pytest.raises(RuntimeError),
        context.db.transaction() as session,
    ):
        register(
            session,
            context.outbox,
            {"name": name, "region_code": "6472011001", "business_type": None},
            scope=NATIONWIDE,
            actor="tester",
        )
        raise RuntimeError("something after the change failed")
    with context.db.transaction() as session:
        assert session.scalar(select(func.count()).where(Group.name == name)) == 0
        assert (
            session.scalar(
                select(func.count())
                .select_from(outbox)
                .where(outbox.envelope["payload"]["group"]["name"].astext == name)
            )
            == 0
        )


def test_redis_down_at_commit_loses_nothing(apps, auth, relay, platform_env, unique):
    from services.registry import create_app

    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    offline = create_app(load_settings("registry", redis_url=dead_redis))
    relay()  # nothing older is pending, so the failed pass below is about this event
    name = unique()
    response = offline.test_client().post(
        "/api/v1/groups",
        json={"name": name, "region_code": "6472011001"},
        headers=auth("pendamping", region="6472"),
    )
    assert response.status_code == 201  # the change itself does not need Redis
    group_id = response.json["id"]

    context = offline.extensions["kube"]
    offline_relay = Relay(
        "registry",
        context.db,
        context.tables.outbox,
        CeleryPublisher(context.celery, context.settings.queue_prefix),
        SUBSCRIPTIONS,
    )
    assert offline_relay.run_once() == 0
    attempts, error = (
        scalar(
            apps,
            "registry",
            f"SELECT {col} FROM outbox_events "
            "WHERE envelope->'payload'->'group'->>'group_id' = :gid",
            gid=group_id,
        )
        for col in ("attempts", "last_error")
    )
    assert attempts >= 1 and error
    context.db.dispose()

    relay()  # Redis is back (the relay's own connection answers)
    wait_until(lambda: projected(apps, group_id) == (name, name))


def delivered_group(apps, clients, auth, relay, name: str) -> tuple[dict, dict]:
    """A group registered and projected by grants, with the envelope of its event."""
    group = register_group(clients, auth, name)
    relay()
    wait_until(lambda: projected(apps, group["id"]) == (name, name))
    with apps["registry"].extensions["kube"].db.transaction() as session:
        envelope = session.execute(
            text("SELECT envelope FROM outbox_events WHERE id = :id"),
            {"id": outbox_row(apps, group["id"])},
        ).scalar()
    return group, envelope


def test_redelivered_event_changes_nothing_the_second_time(apps, clients, auth, relay, unique):
    name = unique()
    group, envelope = delivered_group(apps, clients, auth, relay, name)

    # The same event id again, even with a payload that would change the projection.
    changed = {
        **envelope,
        "payload": {"group": {**envelope["payload"]["group"], "name": "Renamed", "version": 99}},
    }
    publisher = CeleryPublisher(
        apps["grants"].extensions["kube"].celery,
        apps["grants"].extensions["kube"].settings.queue_prefix,
    )
    publisher.publish("grants", envelope)
    publisher.publish("grants", changed)
    # A later event on the same single-process queue tells us the duplicates were consumed.
    marker = unique()
    marker_group = register_group(clients, auth, marker)
    relay()
    wait_until(lambda: projected(apps, marker_group["id"])[0] == marker)

    assert projected(apps, group["id"])[0] == name
    assert (
        scalar(
            apps,
            "grants",
            "SELECT count(*) FROM processed_events WHERE event_id = :id",
            id=envelope["id"],
        )
        == 1
    )


def test_failing_handler_is_retried_then_dead_lettered_then_replayed(
    apps, clients, auth, relay, unique
):
    grants_db = apps["grants"].extensions["kube"].db
    constraint = f"block_{uuid.uuid4().hex[:8]}"
    name = unique("Poison")
    with grants_db.transaction() as session:
        # Make the real handler fail for this one group, as a broken database would.
        session.execute(
            text(
                f"ALTER TABLE group_projections ADD CONSTRAINT {constraint} "
                f"CHECK (name <> '{name}') NOT VALID"
            )
        )
    try:
        group = register_group(clients, auth, name)
        event_id = outbox_row(apps, group["id"])
        relay()
        wait_until(
            lambda: scalar(
                apps,
                "grants",
                "SELECT count(*) FROM dead_letters WHERE event_id = :id",
                id=event_id,
            ),
            timeout=30,
        )
    finally:
        with grants_db.transaction() as session:
            session.execute(text(f"ALTER TABLE group_projections DROP CONSTRAINT {constraint}"))

    # 1 attempt + KUBE_TASK_MAX_RETRIES=2 retries, spread by backoff (>= 0.1 s + 0.2 s).
    listing = clients["grants"].get("/api/v1/dead-letters", headers=auth("admin"))
    assert listing.status_code == 200
    letter = next(d for d in listing.json["items"] if d["event_id"] == str(event_id))
    assert letter["attempts"] == 3
    assert "CheckViolation" in letter["error"] or "check constraint" in letter["error"]
    delay = scalar(
        apps,
        "grants",
        "SELECT extract(epoch FROM failed_at - "
        "(envelope->>'occurred_at')::timestamptz) FROM dead_letters WHERE id = :id",
        id=letter["id"],
    )
    assert delay >= 0.3
    # The other subscriber was not affected.
    wait_until(lambda: projected(apps, group["id"])[1] == name)
    assert projected(apps, group["id"])[0] is None

    forbidden = clients["grants"].post(
        f"/api/v1/dead-letters/{letter['id']}/replay", headers=auth("auditor")
    )
    assert forbidden.status_code == 403
    replay = clients["grants"].post(
        f"/api/v1/dead-letters/{letter['id']}/replay", headers=auth("admin")
    )
    assert replay.status_code == 202
    assert replay.json["replay_count"] == 1
    wait_until(lambda: projected(apps, group["id"])[0] == name)
    assert (
        scalar(
            apps,
            "grants",
            "SELECT count(*) FROM processed_events WHERE event_id = :id",
            id=event_id,
        )
        == 1
    )
    pending = clients["grants"].get("/api/v1/dead-letters?status=pending", headers=auth("admin"))
    assert str(event_id) not in {d["event_id"] for d in pending.json["items"]}


def test_worker_killed_mid_event_is_redelivered_and_recorded_once(
    apps, clients, auth, relay, workers, unique
):
    grants_url = os.environ["GRANTS_DATABASE_URL"].replace("+psycopg", "")
    name = unique()
    with (
        psycopg.connect(grants_url) as blocker,
        # pg_stat_activity is a snapshot per transaction: watch it from outside the blocker's.
        psycopg.connect(grants_url, autocommit=True) as observer,
    ):
        # Hold the table so the handler blocks mid-transaction, after its inbox insert.
        blocker.execute("LOCK TABLE group_projections IN EXCLUSIVE MODE")
        group = register_group(clients, auth, name)
        event_id = outbox_row(apps, group["id"])
        relay()
        wait_until(
            lambda: observer.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query ILIKE '%group_projections%'"
            ).fetchone()[0],
            timeout=30,
        )
        (pool_pid,) = workers["grants"].pool_pids()
        os.kill(pool_pid, signal.SIGKILL)
        wait_until(
            lambda: pool_pid not in workers["grants"].pool_pids() and workers["grants"].pool_pids(),
            timeout=30,
        )
        blocker.rollback()  # release the table

    wait_until(lambda: projected(apps, group["id"])[0] == name, timeout=60)
    assert (
        scalar(
            apps,
            "grants",
            "SELECT count(*) FROM processed_events WHERE event_id = :id",
            id=event_id,
        )
        == 1
    )
    assert (
        scalar(
            apps, "grants", "SELECT count(*) FROM dead_letters WHERE event_id = :id", id=event_id
        )
        == 0
    )


def test_the_feed_never_serves_past_an_event_whose_transaction_commits_late(clients, auth):
    """Positions are (transaction id, sequence) and the feed stops below the oldest running
    transaction, so a cursor can never step over an event that commits after later ones."""
    url = os.environ["REGISTRY_DATABASE_URL"].replace("+psycopg", "")
    service = auth("service")

    def feed(after: str) -> list[str]:
        response = clients["registry"].get(f"/api/v1/events?after={after}", headers=service)
        assert response.status_code == 200, response.json
        return [item["envelope"]["id"] for item in response.json["items"]]

    head = clients["registry"].get("/api/v1/events?limit=1", headers=service).json["head"]
    early, late = str(uuid.uuid4()), str(uuid.uuid4())
    insert = (
        "INSERT INTO outbox_events (id, event_type, envelope, created_at, attempts) "
        "VALUES (%s, 'group.updated', %s, now(), 0)"
    )
    with psycopg.connect(url) as slow, psycopg.connect(url, autocommit=True) as fast:
        slow.execute(insert, (early, json.dumps({"id": early})))  # takes its id first...
        fast.execute(insert, (late, json.dumps({"id": late})))  # ...commits first
        assert early not in feed(head) and late not in feed(head)
        slow.commit()

    # Served once every transaction that was running beside them has ended (transaction ids
    # are cluster-wide: another database's long transaction holds the feed back too).
    def both_served():
        served = [i for i in feed(head) if i in (early, late)]
        return served if len(served) == 2 else None

    assert wait_until(both_served, timeout=60) == [early, late]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM outbox_events WHERE id IN (%s, %s)", (early, late))


def test_the_feed_is_for_internal_services_only(clients, auth):
    for role in ("admin", "pendamping", "auditor"):
        assert clients["registry"].get("/api/v1/events", headers=auth(role)).status_code == 403
    bad = clients["registry"].get("/api/v1/events?after=12", headers=auth("service"))
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "after"


def test_the_feed_refuses_a_regional_service_token(clients, auth):
    """The feed carries every region's events (group snapshots with members' contacts): a
    service token scoped to one region would read all the others through it."""
    for region in ("33", "6472"):
        refused = clients["registry"].get("/api/v1/events", headers=auth("service", region=region))
        assert refused.status_code == 403 and "nationwide" in refused.json["detail"]
    assert clients["registry"].get("/api/v1/events", headers=auth("service")).status_code == 200


def test_a_position_reads_back_as_written_and_orders_by_transaction_first():
    from shared.events.feed import Position

    assert Position.parse("7401.1532") == Position(7401, 1532)
    assert str(Position(7401, 1532)) == "7401.1532"
    assert Position(10, 1) > Position(9, 500)
    for bad in ("", "12", "1.2.3", "-1.2", "a.b", "1." + "9" * 40):
        with pytest.raises(ValueError):
            Position.parse(bad)


def test_an_event_not_signed_by_a_producer_is_refused_and_dead_lettered(
    apps, clients, auth, relay, unique
):
    """Anyone who can write to Redis could forge an envelope; the signature gives it away."""
    from shared.events.signing import sign

    name = unique()
    group, envelope = delivered_group(apps, clients, auth, relay, name)
    forged = {
        **envelope,
        "id": str(uuid.uuid4()),
        "payload": {"group": {**envelope["payload"]["group"], "name": "Dibajak", "version": 9}},
    }
    forged["signature"] = sign(forged, "a key the attacker chose")
    CeleryPublisher(
        apps["grants"].extensions["kube"].celery,
        apps["grants"].extensions["kube"].settings.queue_prefix,
    ).publish("grants", forged)

    def dead_lettered():
        return scalar(
            apps,
            "grants",
            "SELECT error FROM dead_letters WHERE event_id = :id",
            id=forged["id"],
        )

    assert "signature" in wait_until(dead_lettered, timeout=60)
    assert projected(apps, group["id"])[0] == name


def test_an_applied_event_clears_its_failed_attempts_and_a_failing_one_keeps_them(apps):
    from shared.events.consumer import Consumer
    from shared.events.envelope import new_envelope
    from shared.events.signing import sign

    context = apps["notifications"].extensions["kube"]
    group_id = str(uuid.uuid4())
    payload = {
        "group": {
            "group_id": group_id,
            "version": 1,
            "name": "KUBE Percobaan",
            "region_code": "6472011001",
            "status": "active",
            "business_type": None,
            "member_count": 0,
            "members": [],
        }
    }
    envelope = new_envelope("group.registered", payload, source="registry", correlation_id=None)
    key = context.settings.event_signing_keys[0]
    envelope["signature"] = sign(envelope, key)
    calls = []

    def handler(session, payload, envelope):
        calls.append(payload)
        if len(calls) == 1:
            raise RuntimeError("the first try breaks")

    consumer = Consumer(
        "notifications",
        context.db,
        context.tables,
        {"group.registered": handler},
        signing_keys=(key,),
    )
    consumer.record_failure(envelope, RuntimeError("earlier"), base=0.1, cap=1.0)
    with pytest.raises(RuntimeError):
        consumer.handle(envelope)

    def attempts() -> int:
        return scalar(
            apps,
            "notifications",
            "SELECT count(*) FROM event_attempts WHERE event_id = :id",
            id=envelope["id"],
        )

    assert attempts() == 1  # the failed handling rolled back, the count stays
    assert consumer.handle(envelope) == "handled"
    assert attempts() == 0
    assert consumer.handle(envelope) == "duplicate"
    assert len(calls) == 2
