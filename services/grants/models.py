"""The grant service's tables: its copy of the registry's groups and its event tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import utcnow
from shared.events.store import define_event_tables


class Base(DeclarativeBase):
    pass


# The outbox, inbox, dead letters and idempotency keys every service keeps.
EVENT_TABLES = define_event_tables(Base)


class GroupProjection(Base):
    """What grants needs of a group, kept from group.* and member.* events."""

    __tablename__ = "group_projections"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(10), index=True)
    status: Mapped[str] = mapped_column(String(20))
    business_type: Mapped[str | None] = mapped_column(String(100))
    member_count: Mapped[int] = mapped_column(Integer)
    officers: Mapped[dict] = mapped_column(JSONB, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
