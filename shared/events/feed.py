"""The event feed: each producer serves its outbox in commit order; each consumer reads the
feeds of its producers and settles what its inbox lacks (push for speed, pull for
completeness: the broker alone cannot be trusted to deliver everything).

An event's position is (xact_id, sequence): the id of the transaction that wrote it, then
the order of writing. The feed serves only events whose transaction is older than every
transaction still running (`pg_snapshot_xmin`), so an event that commits late has a larger
xact_id than anything already served and a cursor can never skip it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from sqlalchemy import Select, literal_column, select, tuple_
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.events.outbox import CeleryPublisher

log = logging.getLogger(__name__)

# Transactions older than this id are all finished, committed or not.
_HORIZON = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


@dataclass(frozen=True, order=True)
class Position:
    xact_id: int = 0
    sequence: int = 0

    def __str__(self) -> str:
        return f"{self.xact_id}.{self.sequence}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """A position written as `xact_id.sequence`; ValueError for anything else."""
        xact_id, _, sequence = text.partition(".")
        if not (xact_id.isdigit() and sequence.isdigit()) or len(text) > 41:
            raise ValueError(f"not an event position: {text!r}")
        return cls(int(xact_id), int(sequence))


def _served(outbox: type) -> Select:
    return select(outbox).where(outbox.xact_id < _HORIZON)


def read_feed(
    session: Session, outbox: type, after: Position, types: list[str] | None, limit: int
) -> list:
    """The producer's events after `after`, in commit order, at most `limit`."""
    statement = (
        _served(outbox)
        .where(tuple_(outbox.xact_id, outbox.sequence) > tuple_(after.xact_id, after.sequence))
        .order_by(outbox.xact_id, outbox.sequence)
        .limit(limit)
    )
    if types:
        statement = statement.where(outbox.event_type.in_(types))
    return list(session.scalars(statement))


def feed_head(session: Session, outbox: type, types: list[str] | None) -> Position:
    """The position of the newest event the feed serves."""
    statement = _served(outbox).order_by(outbox.xact_id.desc(), outbox.sequence.desc()).limit(1)
    if types:
        statement = statement.where(outbox.event_type.in_(types))
    newest = session.scalar(statement)
    return Position(newest.xact_id, newest.sequence) if newest else Position()


@dataclass
class CatchUp:
    """One pass over one producer's feed by one consumer."""

    producer: str
    settled_up_to: Position
    head: Position
    unsettled: int = 0
    resent: int = 0


def catch_up(
    context,
    producer: str,
    base_url: str,
    token: str,
    *,
    grace: timedelta,
    page_size: int = 500,
    max_pages: int = 20,
) -> CatchUp:
    """Read `producer`'s feed from this consumer's cursor; send again, through the normal
    consumer path (retries, dead letters), every event older than `grace` that is neither
    applied, dead-lettered nor waiting for a retry; advance the cursor over what is settled."""
    tables, service = context.tables, context.service
    with context.db.transaction() as session:
        cursor = session.get(tables.cursors, producer)
        start = Position(cursor.xact_id, cursor.sequence) if cursor else Position()
    result = CatchUp(producer, settled_up_to=start, head=start)
    publisher = CeleryPublisher(context.celery, context.settings.queue_prefix)
    types = ",".join(service.subscribes_to)
    position, prefix_settled, now = start, True, utcnow()
    for _ in range(max_pages):
        response = requests.get(
            f"{base_url}/api/v1/events",
            params={"after": str(position), "types": types, "limit": page_size},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        response.raise_for_status()
        page = response.json()
        result.head = Position.parse(page["head"])
        items = page["items"]
        if not items:
            break
        settled, retry_due = _settlement(context, [item["envelope"]["id"] for item in items])
        for item in items:
            envelope, here = item["envelope"], Position.parse(item["position"])
            if envelope["id"] in settled:
                if prefix_settled:
                    result.settled_up_to = here
                continue
            prefix_settled = False
            result.unsettled += 1
            due = retry_due.get(envelope["id"])
            if _occurred(envelope) > now - grace or (due is not None and due > now - grace):
                continue  # still on its way by push, or its retry is not due yet
            marker = f"{context.settings.queue_prefix}:catch-up:{service.name}:{envelope['id']}"
            # One copy per grace period, however often the pass runs.
            if context.redis.set(marker, 1, nx=True, ex=max(1, int(grace.total_seconds()))):
                publisher.publish(service.name, envelope)
                result.resent += 1
        position = Position.parse(items[-1]["position"])
        if len(items) < page_size:
            break
    _save(context, result)
    if result.resent:
        log.warning(
            "catch-up sent events the broker had not delivered",
            extra={"producer": producer, "resent": result.resent},
        )
    return result


def record_catch_up_error(context, producer: str, error: Exception) -> None:
    """Keep why a pass failed (the producer unreachable, say) where the lag report shows it."""
    with context.db.transaction() as session:
        cursor = session.get(context.tables.cursors, producer) or _new_cursor(context, producer)
        session.add(cursor)
        cursor.checked_at = utcnow()
        cursor.error = f"{type(error).__name__}: {error}"[:1000]


def _settlement(context, ids: list[str]) -> tuple[set[str], dict[str, datetime]]:
    tables = context.tables
    keys = [uuid.UUID(i) for i in ids]
    with context.db.transaction() as session:
        applied = session.scalars(
            select(tables.inbox.event_id).where(tables.inbox.event_id.in_(keys))
        )
        dead = session.scalars(
            select(tables.dead_letters.event_id).where(tables.dead_letters.event_id.in_(keys))
        )
        waiting = session.execute(
            select(tables.attempts.event_id, tables.attempts.next_attempt_at).where(
                tables.attempts.event_id.in_(keys)
            )
        ).all()
        settled = {str(i) for i in applied} | {str(i) for i in dead}
    return settled, {str(event_id): due for event_id, due in waiting}


def _occurred(envelope: dict) -> datetime:
    try:
        return datetime.fromisoformat(envelope["occurred_at"])
    except (KeyError, TypeError, ValueError):
        return datetime.min.replace(tzinfo=utcnow().tzinfo)


def _new_cursor(context, producer: str):
    return context.tables.cursors(
        producer=producer,
        xact_id=0,
        sequence=0,
        head_xact_id=0,
        head_sequence=0,
        unsettled=0,
        resent=0,
    )


def _save(context, result: CatchUp) -> None:
    with context.db.transaction() as session:
        cursor = session.get(context.tables.cursors, result.producer, with_for_update=True)
        if cursor is None:
            cursor = _new_cursor(context, result.producer)
            session.add(cursor)
        # Two passes at once must not move a cursor back.
        if Position(cursor.xact_id, cursor.sequence) < result.settled_up_to:
            cursor.xact_id, cursor.sequence = (
                result.settled_up_to.xact_id,
                result.settled_up_to.sequence,
            )
        cursor.head_xact_id, cursor.head_sequence = result.head.xact_id, result.head.sequence
        cursor.unsettled = result.unsettled
        cursor.resent = (cursor.resent or 0) + result.resent
        cursor.checked_at = utcnow()
        cursor.error = None  # this pass succeeded
