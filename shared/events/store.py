"""The tables every service keeps for its events and requests: the outbox, the inbox, the
dead letters and the idempotency keys. Defined once here; each service binds them to its own
declarative base with `define_event_tables`, and its migrations create them with
`shared.events.schema`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from shared.db import utcnow


class OutboxMixin:
    """Events written in the same transaction as the change that raised them."""

    __tablename__ = "outbox_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[dict] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The event's place in the feed consumers read to catch up: (xact_id, sequence). The id
    # of the transaction that wrote it comes first, so an event whose transaction commits
    # late still sorts after every event a consumer can already have read (see feed.py).
    xact_id: Mapped[int] = mapped_column(
        BigInteger, server_default=text("pg_current_xact_id()::text::bigint")
    )
    sequence: Mapped[int] = mapped_column(BigInteger, Identity(always=True))

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        return (
            # The relay only ever scans unpublished rows; keep that index small.
            Index(
                "ix_outbox_events_pending",
                "created_at",
                postgresql_where=text("published_at IS NULL"),
            ),
            Index("ix_outbox_events_position", "xact_id", "sequence"),
        )


class InboxMixin:
    """Ids of events this service has handled, written with the handler's effect."""

    __tablename__ = "processed_events"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    handled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeadLetterMixin:
    """Events a handler could not process after its retries; listed and replayed by the API."""

    __tablename__ = "dead_letters"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    event_type: Mapped[str | None] = mapped_column(String(100))
    # The region the event is about, so a regional admin or auditor sees only their own.
    region_code: Mapped[str | None] = mapped_column(String(10))
    envelope: Mapped[dict] = mapped_column(JSONB)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replay_count: Mapped[int] = mapped_column(Integer, default=0)


class EventAttemptMixin:
    """An event whose handler failed and waits for its next try: how often it failed, and
    when the retry is due. The count lives here, not in the broker's message, so a retry
    that a crash or a catch-up sent again still counts towards the dead letter."""

    __tablename__ = "event_attempts"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventCursorMixin:
    """How far this service has settled each producer's feed, and what it last saw of it."""

    __tablename__ = "event_cursors"

    producer: Mapped[str] = mapped_column(String(50), primary_key=True)
    # Every event up to here is applied or dead-lettered.
    xact_id: Mapped[int] = mapped_column(BigInteger, default=0)
    sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    # The producer's newest event, and how many after the cursor were not settled yet.
    head_xact_id: Mapped[int] = mapped_column(BigInteger, default=0)
    head_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    unsettled: Mapped[int] = mapped_column(Integer, default=0)
    resent: Mapped[int] = mapped_column(Integer, default=0)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class IdempotencyKeyMixin:
    """The first response to each (caller, key), kept for a day."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    subject: Mapped[str] = mapped_column(String(100), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class EventTables:
    """One service's event and request tables, as mapped classes of its own base."""

    outbox: type
    inbox: type
    dead_letters: type
    idempotency_keys: type
    attempts: type
    cursors: type


def define_event_tables(base: type[DeclarativeBase]) -> EventTables:
    """Map the shared tables onto a service's declarative base (call once per service)."""
    return EventTables(
        outbox=type("OutboxEvent", (OutboxMixin, base), {}),
        inbox=type("ProcessedEvent", (InboxMixin, base), {}),
        dead_letters=type("DeadLetter", (DeadLetterMixin, base), {}),
        idempotency_keys=type("IdempotencyKey", (IdempotencyKeyMixin, base), {}),
        attempts=type("EventAttempt", (EventAttemptMixin, base), {}),
        cursors=type("EventCursor", (EventCursorMixin, base), {}),
    )
