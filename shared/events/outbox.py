"""The transactional outbox: record an event with the change, publish it after commit."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import redis
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shared.config import queue_name
from shared.db import Database, driver_cursor, utcnow
from shared.events.envelope import checked_payload, new_envelope
from shared.events.signing import sign, signed_json
from shared.events.subscriptions import Subscriptions
from shared.logs import correlation_id_var

log = logging.getLogger(__name__)

_PENDING_KEY = "kube_outbox_pending"


def wake_key(queue_prefix: str, service: str) -> str:
    """The Redis list the relay of `service` blocks on between batches."""
    return f"{queue_prefix}:relay-wake:{service}"


@dataclass(frozen=True)
class PreparedEvent:
    """An event signed and encoded ahead of its transaction (EventPreparer)."""

    id: str
    event_type: str
    envelope_json: str


@dataclass(frozen=True)
class EventPreparer:
    """Signs events of one declared type ahead of their transaction (Outbox.preparer)."""

    event_type: str
    source: str
    signing_key: str = field(repr=False)
    correlation_id: str | None = None

    def prepare(self, payloads: list[dict]) -> list[PreparedEvent]:
        """Signed events, ready for `Outbox.add_prepared`. The payloads are JSON-ready and made
        by one function from checked data: the first is checked against the contract and must
        come out of it unchanged, so a builder that drifts from the contract fails the whole
        batch; checking each one would cost more than the rest of the import together."""
        if not payloads:
            return []
        if checked_payload(self.event_type, payloads[0]) != payloads[0]:
            raise ValueError(f"{self.event_type} payloads are not in their contract's form")
        prepared = []
        for payload in payloads:
            envelope = new_envelope(
                self.event_type,
                payload,
                source=self.source,
                correlation_id=self.correlation_id,
                checked=False,
            )
            prepared.append(
                PreparedEvent(
                    envelope["id"], self.event_type, signed_json(envelope, self.signing_key)
                )
            )
        return prepared


class Outbox:
    """Writes a service's events into its outbox table inside the caller's transaction."""

    def __init__(
        self,
        service: str,
        model: type,
        db: Database,
        *,
        prompt: Callable[[], None],
        signing_key: str,
        publishes: Iterable[str],
    ):
        self.service = service
        self.model = model
        self.signing_key = signing_key
        # The types the service declares (`Service.publishes`): the catalogue names it their
        # producer, so an undeclared one is refused rather than sent.
        self.publishes = frozenset(publishes)
        self._prompt = prompt
        db.on_commit(self._after_commit)

    def add(self, session: Session, event_type: str, payload: dict) -> dict:
        """Record an event in `session`; it is published only if the transaction commits."""
        self._check_declared(event_type)
        envelope = new_envelope(
            event_type, payload, source=self.service, correlation_id=correlation_id_var.get()
        )
        envelope["signature"] = sign(envelope, self.signing_key)
        session.add(
            self.model(id=uuid.UUID(envelope["id"]), event_type=event_type, envelope=envelope)
        )
        session.info[_PENDING_KEY] = True
        return envelope

    def add_many(self, session: Session, event_type: str, payloads: list[dict]) -> list[dict]:
        """Record several events of one type in `session` with one INSERT statement."""
        self._check_declared(event_type)
        envelopes = []
        for payload in payloads:
            envelope = new_envelope(
                event_type, payload, source=self.service, correlation_id=correlation_id_var.get()
            )
            envelope["signature"] = sign(envelope, self.signing_key)
            envelopes.append(envelope)
        if envelopes:
            session.execute(
                insert(self.model),
                [
                    {"id": uuid.UUID(e["id"]), "event_type": event_type, "envelope": e}
                    for e in envelopes
                ],
            )
            session.info[_PENDING_KEY] = True
        return envelopes

    def preparer(self, event_type: str) -> EventPreparer:
        """What signs events of one type ahead of their transaction, for `add_prepared` (bulk
        imports, which make them before their transaction begins, possibly in another
        process: it is picklable)."""
        self._check_declared(event_type)
        return EventPreparer(event_type, self.service, self.signing_key, correlation_id_var.get())

    def add_prepared(self, session: Session, events: list[PreparedEvent]) -> None:
        """Record events made by an EventPreparer in `session` with one COPY."""
        if not events:
            return
        now = utcnow()
        table = self.model.__table__.name
        columns = "id, event_type, envelope, created_at, attempts"
        with (
            driver_cursor(session) as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for event in events:
                copy.write_row((event.id, event.event_type, event.envelope_json, now, 0))
        session.info[_PENDING_KEY] = True

    def _check_declared(self, event_type: str) -> None:
        if event_type not in self.publishes:
            raise ValueError(
                f"{self.service} does not declare {event_type!r} in its service definition's "
                "`publishes`"
            )

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_PENDING_KEY, False):
            self._prompt()


def redis_prompt(client: redis.Redis, key: str) -> Callable[[], None]:
    """A best-effort nudge to the relay; when Redis is down the relay's poll catches up."""

    def prompt() -> None:
        try:
            pipe = client.pipeline()
            pipe.lpush(key, 1)
            pipe.ltrim(key, 0, 0)  # one pending nudge is enough
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("relay prompt failed; the relay will poll", extra={"error": str(exc)})

    return prompt


class CeleryPublisher:
    """Sends an envelope to a subscriber's queue as that service's `handle_event` task."""

    def __init__(self, celery_app, queue_prefix: str):
        self.celery = celery_app
        self.queue_prefix = queue_prefix

    def publish(self, subscriber: str, envelope: dict) -> None:
        self.celery.send_task(
            f"{subscriber}.handle_event",
            args=[envelope],
            queue=queue_name(self.queue_prefix, subscriber),
            task_id=f"{envelope['id']}:{subscriber}",
            # Fail fast when Redis is down: the row stays pending and the relay retries.
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
        )


class Relay:
    """Publishes a service's pending outbox rows to every subscriber, oldest first."""

    def __init__(
        self,
        service: str,
        db: Database,
        model: type,
        publisher,
        subscriptions: Subscriptions,
        batch_size: int = 200,
    ):
        self.service = service
        self.db = db
        self.model = model
        self.publisher = publisher
        self.subscriptions = subscriptions
        self.batch_size = batch_size

    def run_once(self) -> int:
        """Publish one batch; return how many events were published."""
        published = 0
        with self.db.transaction() as session:
            # SKIP LOCKED lets several relays share the table without sending a row twice.
            rows = session.scalars(
                select(self.model)
                .where(self.model.published_at.is_(None))
                .order_by(self.model.created_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                try:
                    for subscriber in self.subscriptions.subscribers_of(row.event_type):
                        self.publisher.publish(subscriber, row.envelope)
                except Exception as exc:
                    # Keep the order: stop here and retry this row on the next pass.
                    row.attempts += 1
                    row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    log.warning(
                        "outbox publish failed",
                        extra={"event_id": str(row.id), "error": row.last_error},
                    )
                    break
                row.published_at = utcnow()
                published += 1
        return published


def run_relays(
    relays: list[Relay], redis_url: str, key_prefix: str, poll_seconds: float, stop: threading.Event
) -> None:
    """Run one relay loop per service until `stop` is set."""
    threads = [
        threading.Thread(
            target=_relay_loop,
            args=(relay, redis_url, wake_key(key_prefix, relay.service), poll_seconds, stop),
            name=f"relay-{relay.service}",
            daemon=True,
        )
        for relay in relays
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _relay_loop(
    relay: Relay, redis_url: str, key: str, poll_seconds: float, stop: threading.Event
) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=poll_seconds + 5)
    while not stop.is_set():
        try:
            published = relay.run_once()
        except Exception:
            log.exception("relay pass failed", extra={"relay": relay.service})
            published = 0
        if published:
            log.info("outbox published", extra={"relay": relay.service, "count": published})
        if published >= relay.batch_size:
            continue  # more waiting: no pause
        try:
            # Wake at once on a commit's prompt, or after poll_seconds at the latest.
            client.blpop([key], timeout=max(1, int(poll_seconds)))
        except redis.RedisError:
            stop.wait(poll_seconds)
