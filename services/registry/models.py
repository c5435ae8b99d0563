"""The registry's tables: groups, members, regions, visits, imports, the personal-data
access trail, and the event tables every service keeps."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.db import utcnow
from shared.encryption import data_keys
from shared.events.store import define_event_tables


class Base(DeclarativeBase):
    pass


# The outbox, inbox, dead letters and idempotency keys every service keeps.
EVENT_TABLES = define_event_tables(Base)


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(10))
    address: Mapped[str | None] = mapped_column(Text)
    business_type: Mapped[str | None] = mapped_column(String(100))
    founded_on: Mapped[date | None] = mapped_column(Date)
    bank_name: Mapped[str | None] = mapped_column(String(100))
    bank_account_number: Mapped[str | None] = mapped_column(String(30))
    bank_account_holder: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # Grows with every change to the group or its members: the ETag, and the order in
    # which consumers apply snapshots.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        # text_pattern_ops lets `region_code LIKE '6472%'` (region scope) use the index.
        Index(
            "ix_groups_region_code_prefix",
            "region_code",
            postgresql_ops={"region_code": "text_pattern_ops"},
        ),
    )


# What each encrypted value is bound to (AES-GCM associated data), and the hashes' domains.
NIK_PURPOSE = b"members.nik"
KK_PURPOSE = b"members.kk_number"
IMPORT_FILE_PURPOSE = b"imports.content"


def nik_lookup(nik: str) -> bytes:
    """The keyed hash by which the registry finds and compares a NIK (`Member.nik_hash`)."""
    return data_keys().lookup_hash(nik, purpose=b"nik")


def kk_lookup(kk_number: str) -> bytes:
    """The keyed hash of a No. KK (`Member.kk_hash`)."""
    return data_keys().lookup_hash(kk_number, purpose=b"kk")


class Member(Base):
    """A head of family in a group; removed members stay, with `removed_at`, for history."""

    __tablename__ = "members"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id"), index=True)
    # NIK and No. KK are stored encrypted (shared/encryption.py), each with its keyed hash
    # for lookups and uniqueness; `nik` and `kk_number` read and write the plain values.
    nik_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    nik_hash: Mapped[bytes] = mapped_column(LargeBinary, index=True)
    kk_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    kk_hash: Mapped[bytes] = mapped_column(LargeBinary)
    name: Mapped[str] = mapped_column(String(200))
    gender: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(5), default="id")
    role: Mapped[str] = mapped_column(String(20), default="anggota")
    village_code: Mapped[str] = mapped_column(String(10))
    # True while the membership counts: not removed and the group not dissolved.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    group: Mapped[Group] = relationship()

    @property
    def nik(self) -> str:
        return data_keys().decrypt_text(self.nik_encrypted, purpose=NIK_PURPOSE)

    @nik.setter
    def nik(self, value: str) -> None:
        self.nik_encrypted = data_keys().encrypt_text(value, purpose=NIK_PURPOSE)
        self.nik_hash = nik_lookup(value)

    @property
    def kk_number(self) -> str:
        return data_keys().decrypt_text(self.kk_encrypted, purpose=KK_PURPOSE)

    @kk_number.setter
    def kk_number(self, value: str) -> None:
        self.kk_encrypted = data_keys().encrypt_text(value, purpose=KK_PURPOSE)
        self.kk_hash = kk_lookup(value)

    __table_args__ = (
        # The database enforces the rules a race could break: one active group per person
        # (by the NIK's keyed hash), one holder of each officer role per group.
        Index("uq_members_active_nik", "nik_hash", unique=True, postgresql_where=text("active")),
        Index(
            "uq_members_group_officer",
            "group_id",
            "role",
            unique=True,
            postgresql_where=text("active AND role <> 'anggota'"),
        ),
        # Current members by group, read index-only: the reports count them per region.
        Index("ix_members_current_group", "group_id", postgresql_where=text("removed_at IS NULL")),
    )


class Region(Base):
    """The official Kemendagri region table, loaded by `kube regions load`."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(String(10), index=True)


class Visit(Base):
    """A mentoring visit by a pendamping, with the revenue the group reported."""

    __tablename__ = "visits"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("groups.id"), index=True)
    visited_on: Mapped[date] = mapped_column(Date)
    topics: Mapped[list[str]] = mapped_column(ARRAY(String(30)))
    notes: Mapped[str | None] = mapped_column(Text)
    monthly_revenue: Mapped[int | None] = mapped_column(BigInteger)  # whole rupiah
    pendamping: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GrantDisbursement(Base):
    """A grant paid to a group, as the grant service announced it (`grant.disbursed`): the
    registry's own copy of the one grant fact its revenue report needs."""

    __tablename__ = "grant_disbursements"

    grant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # No foreign key: the fact is the grant service's, and it may arrive before the registry
    # has committed what it knows of the group.
    group_id: Mapped[uuid.UUID] = mapped_column(index=True)
    disbursed_on: Mapped[date] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PersonalDataAccess(Base):
    """Who saw a member's full NIK and No. KK, and when (UU 27/2022 access trail)."""

    __tablename__ = "personal_data_access"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    member_id: Mapped[uuid.UUID] = mapped_column(index=True)
    accessed_by: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    request_id: Mapped[str | None] = mapped_column(String(128))
    accessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Import(Base):
    """An uploaded CSV or XLSX of groups and members, processed by the worker."""

    __tablename__ = "imports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    filename: Mapped[str] = mapped_column(String(255))
    file_format: Mapped[str] = mapped_column(String(10))
    # A file uploaded before import_chunks (0007), encrypted like a NIK; empty for newer
    # imports, whose file is in import_chunks, and once purged.
    content_encrypted: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    region_scope: Mapped[str] = mapped_column(String(10), default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    groups_created: Mapped[int] = mapped_column(Integer, default=0)
    groups_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    groups_rejected: Mapped[int] = mapped_column(Integer, default=0)
    row_errors: Mapped[list] = mapped_column(JSONB, default=list)
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def content(self) -> bytes:
        """The file of an import stored before import_chunks (b"" for newer ones)."""
        if not self.content_encrypted:
            return b""
        return data_keys().decrypt(self.content_encrypted, purpose=IMPORT_FILE_PURPOSE)


class ImportChunk(Base):
    """A piece of an uploaded import file, in order, encrypted like a NIK (every row holds
    one); an upload streams in a chunk at a time, and the worker reads them back in order."""

    __tablename__ = "import_chunks"

    import_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_encrypted: Mapped[bytes] = mapped_column(LargeBinary)


def import_chunk_purpose(import_id: uuid.UUID, seq: int) -> bytes:
    """The associated data of a chunk: a chunk moved to another import or place fails to
    decrypt instead of splicing files together."""
    return b"%s:%s:%d" % (IMPORT_FILE_PURPOSE, import_id.hex.encode(), seq)
