"""The notification service's tables: its copy of groups' contacts and its event tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
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
