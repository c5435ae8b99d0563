"""The notification service's tables: its copy of groups' contacts, the rules and templates
that say who hears what, every message and its delivery, opt-outs, office mailboxes,
broadcasts, and its event tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db import utcnow
from shared.events.store import define_event_tables


class Base(DeclarativeBase):
    pass


# The outbox, inbox, dead letters and idempotency keys every service keeps.
EVENT_TABLES = define_event_tables(Base)


class RecipientGroup(Base):
    """A group as notifications knows it: who to write to, kept from the registry's events."""

    __tablename__ = "recipient_groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(10), index=True)
    status: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="group", cascade="all, delete-orphan", order_by="Contact.name"
    )


class Contact(Base):
    __tablename__ = "contacts"

    member_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("recipient_groups.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(5), default="id")
    group: Mapped[RecipientGroup] = relationship(back_populates="contacts")


class Rule(Base):
    """Which event (and, for a stage change, which stage) tells which audience on which
    channel with which template. One fact, one event, one rule."""

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(100))
    # For grant.stage_changed: the stage reached; None matches any.
    stage: Mapped[str | None] = mapped_column(String(20))
    audience: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    template_key: Mapped[str] = mapped_column(String(100))
    # Critical messages (the disbursement) reach opted-out numbers and ignore quiet hours.
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        Index(
            "uq_rules_event_stage_audience_channel",
            "event_type",
            text("coalesce(stage, '')"),
            "audience",
            "channel",
            unique=True,
        ),
    )


class Template(Base):
    """One message text per key, channel and language; each change is a new version."""

    __tablename__ = "templates"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    key: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(5))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("key", "channel", "language", name="uq_templates_key_channel_language"),
    )


class TemplateVersion(Base):
    __tablename__ = "template_versions"

    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("templates.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Message(Base):
    """One message to one recipient on one channel, from one event: the database refuses a
    second, so a redelivered event never sends twice."""

    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(100))
    # The member's id, or the mailbox's address: who, whatever their number is.
    recipient_key: Mapped[str] = mapped_column(String(254))
    recipient: Mapped[str] = mapped_column(String(254))
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(10))
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("templates.id"))
    template_version: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    encoding: Mapped[str | None] = mapped_column(String(10))
    sms_parts: Mapped[int | None] = mapped_column(Integer)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider: Mapped[str | None] = mapped_column(String(50))
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    group_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    grant_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    broadcast_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("broadcasts.id"))
    region_code: Mapped[str] = mapped_column(String(10))
    # Not before (quiet hours, a retry's backoff); the dispatcher sends what is due.
    send_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("event_id", "recipient_key", "channel", name="uq_messages_one_per_event"),
        Index(
            "ix_messages_region_code_prefix",
            "region_code",
            postgresql_ops={"region_code": "text_pattern_ops"},
        ),
        Index("ix_messages_due", "send_after", postgresql_where=text("status = 'queued'")),
        Index("ix_messages_provider_id", "provider", "provider_message_id"),
        Index("ix_messages_created_at", "created_at"),
    )


class OptOut(Base):
    """A number that asked for no more SMS (critical ones still go)."""

    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OfficeMailbox(Base):
    """Where an office's role reads its email, per region ("" is the default for all)."""

    __tablename__ = "office_mailboxes"

    region_code: Mapped[str] = mapped_column(String(10), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Broadcast(Base):
    """One text to every group of a region, or to a list of groups."""

    __tablename__ = "broadcasts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    region_code: Mapped[str] = mapped_column(String(10))
    group_ids: Mapped[list | None] = mapped_column(JSONB)
    audience: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
