"""The idempotent consumer: handle each event once, retry failures, dead-letter the rest."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.db import Database, utcnow
from shared.errors import PermanentError
from shared.events.envelope import validate_envelope
from shared.events.store import EventTables
from shared.logs import correlation_id_var

log = logging.getLogger(__name__)

Handler = Callable[[Session, dict, dict], None]  # (session, payload, envelope)


class Consumer:
    """Runs a service's event handlers inside a transaction that also records the event id."""

    def __init__(
        self,
        service: str,
        db: Database,
        tables: EventTables,
        handlers: Mapping[str, Handler],
        *,
        signing_keys: tuple[str, ...],
    ):
        self.service = service
        self.signing_keys = signing_keys
        self.db = db
        self.inbox = tables.inbox
        self.dead_letters = tables.dead_letters
        self.attempts = tables.attempts
        self.handlers = handlers

    def handle(self, envelope: dict) -> str:
        """Apply the event once; return "handled" or "duplicate"."""
        payload = validate_envelope(envelope, self.signing_keys)
        handler = self.handlers.get(envelope["type"])
        if handler is None:
            raise PermanentError(f"{self.service} has no handler for {envelope['type']}")
        token = correlation_id_var.set(envelope.get("correlation_id"))
        try:
            event_id = uuid.UUID(envelope["id"])
            with self.db.transaction() as session:
                # The insert takes the id's index lock: a concurrent copy of this event waits
                # here, then sees the conflict once this transaction commits. The same
                # statement clears the event's failed attempts: they are history once it is
                # applied, and if the handler fails the rollback keeps them.
                cleared = delete(self.attempts).where(self.attempts.event_id == event_id).cte()
                first = session.execute(
                    insert(self.inbox)
                    # (Given here: with the CTE, the column's Python default was not applied.)
                    .values(event_id=event_id, event_type=envelope["type"], handled_at=utcnow())
                    .on_conflict_do_nothing(index_elements=["event_id"])
                    .returning(self.inbox.event_id)
                    .add_cte(cleared)
                ).first()
                if first is None:
                    return "duplicate"
                handler(session, payload, envelope)
            return "handled"
        finally:
            correlation_id_var.reset(token)

    def record_failure(
        self, envelope: dict, error: BaseException, *, base: float, cap: float
    ) -> tuple[int, float]:
        """Count a failed attempt of the event (here, whichever message carried it) and set
        when its retry is due; return the failed attempts so far and the retry's delay."""
        event_id = uuid.UUID(envelope["id"])
        now = utcnow()
        statement = insert(self.attempts).values(
            event_id=event_id,
            event_type=str(envelope.get("type"))[:100],
            attempts=1,
            next_attempt_at=now,
            last_error=f"{type(error).__name__}: {error}"[:4000],
            updated_at=now,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["event_id"],
            set_={
                "attempts": self.attempts.attempts + 1,
                "last_error": statement.excluded.last_error,
                "updated_at": statement.excluded.updated_at,
            },
        ).returning(self.attempts.attempts)
        with self.db.transaction() as session:
            attempts = session.execute(statement).scalar_one()
            delay = backoff_delay(attempts - 1, base, cap)
            session.execute(
                update(self.attempts)
                .where(self.attempts.event_id == event_id)
                .values(next_attempt_at=now + timedelta(seconds=delay))
            )
        return attempts, delay

    def dead_letter(self, envelope: object, error: BaseException, attempts: int) -> None:
        """Keep the failed event, with its error, where the API can list and replay it."""
        data = envelope if isinstance(envelope, dict) else {"raw": repr(envelope)}
        try:
            event_id = uuid.UUID(str(data.get("id")))
        except ValueError:
            event_id = None
        with self.db.transaction() as session:
            session.add(
                self.dead_letters(
                    event_id=event_id,
                    event_type=str(data.get("type"))[:100] if data.get("type") else None,
                    region_code=region_of(data),
                    envelope=data,
                    error=f"{type(error).__name__}: {error}"[:4000],
                    attempts=attempts,
                )
            )
            if event_id is not None:
                session.execute(delete(self.attempts).where(self.attempts.event_id == event_id))
        log.error(
            "event dead-lettered",
            extra={
                "event_id": str(event_id),
                "event_type": data.get("type"),
                "attempts": attempts,
                "error": str(error)[:500],
            },
        )


def region_of(envelope: dict) -> str | None:
    """The region an event is about, where its payload names one."""
    payload = envelope.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    subject = payload.get("group") if isinstance(payload.get("group"), dict) else payload
    code = subject.get("region_code")
    return code[:10] if isinstance(code, str) and code.isdigit() else None


def backoff_delay(retries: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: half fixed, half random, so retries spread out."""
    delay = min(cap, base * (2**retries))
    return delay / 2 + random.uniform(0, delay / 2)


def deliver(task, consumer: Consumer, envelope: dict, settings: Settings) -> str:
    """Run the consumer for a Celery task: retry what may pass later, dead-letter the rest.

    The retry limit is the project's setting (KUBE_TASK_MAX_RETRIES), counted in the
    service's database, so it holds whichever message carries the event (a redelivery after
    a crash, a catch-up's copy); the task itself has no Celery limit of its own."""
    try:
        return consumer.handle(envelope)
    except PermanentError as exc:
        error, attempts = exc, 1
    except Exception as exc:
        error = exc
        try:
            attempts, delay = consumer.record_failure(
                envelope,
                exc,
                base=settings.retry_backoff_seconds,
                cap=settings.retry_backoff_max_seconds,
            )
        except Exception as bookkeeping:
            # The database itself is failing: try again later, never drop the event.
            raise task.retry(
                exc=bookkeeping, countdown=settings.retry_backoff_max_seconds
            ) from bookkeeping
        # The first attempt and KUBE_TASK_MAX_RETRIES retries, then the dead letter.
        if attempts <= settings.task_max_retries:
            log.warning(
                "event handler failed; retrying",
                extra={
                    "event_id": envelope.get("id"),
                    "attempt": attempts,
                    "retry_in_s": round(delay, 2),
                    "error": str(exc)[:500],
                },
            )
            raise task.retry(exc=exc, countdown=delay) from exc
    try:
        consumer.dead_letter(envelope, error, attempts)
    except Exception as exc:
        # Never drop an event silently: if even the dead-letter write fails, try again later.
        raise task.retry(exc=exc, countdown=settings.retry_backoff_max_seconds) from exc
    return "dead_lettered"
