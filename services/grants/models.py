"""The grant service's tables: programmes and their budgets, applications, their audit trail,
decrees, disbursement batches, the working-day calendar, its copy of the registry's groups and
its event tables."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import utcnow
from shared.events.store import define_event_tables


class Base(DeclarativeBase):
    pass


# The outbox, inbox, dead letters and idempotency keys every service keeps.
EVENT_TABLES = define_event_tables(Base)

# Stages an application never leaves; any other stage is an open application.
FINAL_STAGES = ("closed", "rejected", "cancelled")
_OPEN = "stage NOT IN ('closed', 'rejected', 'cancelled')"


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
    # {bank_name, account_number, account_holder}, or None while the registry has none.
    bank_account: Mapped[dict | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkflowDefinition(Base):
    """One version of an approval route; a stored version never changes (applications keep
    the version they started with)."""

    __tablename__ = "workflow_definitions"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict] = mapped_column(JSONB)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Program(Base):
    """A UEP programme: its budget, amount rule and approval route. The budget's counters
    move only with a row in `budget_movements`, and the database refuses an overdraft."""

    __tablename__ = "programs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    fiscal_year: Mapped[int] = mapped_column(Integer)
    funding_source: Mapped[str] = mapped_column(String(20))
    # A Kemendagri prefix (province or regency); None for a national (APBN) programme.
    region_code: Mapped[str | None] = mapped_column(String(4))
    total_budget: Mapped[int] = mapped_column(BigInteger)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    disbursed: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_rule: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    min_members: Mapped[int] = mapped_column(Integer)
    max_members: Mapped[int] = mapped_column(Integer)
    workflow_key: Mapped[str] = mapped_column(String(40))
    report_due_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="open")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        CheckConstraint("total_budget >= 0", name="total_budget_not_negative"),
        CheckConstraint("reserved >= 0 AND disbursed >= 0", name="budget_counters_not_negative"),
        CheckConstraint("reserved + disbursed <= total_budget", name="budget_not_overdrawn"),
        CheckConstraint("min_members <= max_members", name="member_limits_ordered"),
    )


class BudgetMovement(Base):
    """The ledger behind a programme's counters: reserve, release or disburse an amount."""

    __tablename__ = "budget_movements"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("grants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Grant(Base):
    """A group's UEP application, moving through the stages of its workflow version."""

    __tablename__ = "grants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    group_id: Mapped[uuid.UUID] = mapped_column(index=True)
    group_name: Mapped[str] = mapped_column(String(200))
    # The group's village when the application was made: the region that sees it.
    region_code: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    business_plan: Mapped[str] = mapped_column(Text)
    requested_items: Mapped[list] = mapped_column(JSONB, default=list)
    documents: Mapped[dict] = mapped_column(JSONB, default=dict)
    stage: Mapped[str] = mapped_column(String(20))
    workflow_key: Mapped[str] = mapped_column(String(40))
    workflow_version: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    stage_entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the current stage's work is due (working days, or the usage report's days).
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(100))
    submitted_by: Mapped[str | None] = mapped_column(String(100))
    verified_by: Mapped[str | None] = mapped_column(String(100))
    approved_by: Mapped[str | None] = mapped_column(String(100))
    decree_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("decrees.id"))
    decree_number: Mapped[str | None] = mapped_column(String(100))
    transfer_reference: Mapped[str | None] = mapped_column(String(100))
    transfer_date: Mapped[date | None] = mapped_column(Date)
    disbursed_amount: Mapped[int | None] = mapped_column(BigInteger)
    last_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        # One open application per group and programme, whatever races the guard.
        Index(
            "uq_grants_one_open_per_group_program",
            "program_id",
            "group_id",
            unique=True,
            postgresql_where=text(_OPEN),
        ),
        Index(
            "ix_grants_region_code_prefix",
            "region_code",
            postgresql_ops={"region_code": "text_pattern_ops"},
        ),
        Index("ix_grants_stage", "stage"),
        Index("ix_grants_due_at", "due_at", postgresql_where=text("due_at IS NOT NULL")),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class AuditRecord(Base):
    """One step in an application's history, chained to the one before it by its hash."""

    __tablename__ = "grant_audit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("grants.id"))
    seq: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(30))
    from_stage: Mapped[str | None] = mapped_column(String(20))
    to_stage: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[str | None] = mapped_column(String(128))
    workflow_key: Mapped[str] = mapped_column(String(40))
    workflow_version: Mapped[int] = mapped_column(Integer)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("grant_id", "seq", name="uq_grant_audit_seq"),)


class Decree(Base):
    """A decree (SK penetapan) approving many applications at once."""

    __tablename__ = "decrees"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    number: Mapped[str] = mapped_column(String(100))
    decree_date: Mapped[date] = mapped_column(Date)
    signer: Mapped[str] = mapped_column(String(200))
    # The issuing office's region ("" nationwide): decree numbers are unique per office.
    region_code: Mapped[str] = mapped_column(String(10))
    approved_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("region_code", "number", name="uq_decrees_number"),)


class DisbursementBatch(Base):
    """Approved applications of one programme collected into one bank transfer file."""

    __tablename__ = "disbursement_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    program_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programs.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BatchItem(Base):
    """One transfer in a batch: the account as the registry last announced it, and the
    bank's result."""

    __tablename__ = "disbursement_items"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disbursement_batches.id"))
    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("grants.id"))
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    bank_name: Mapped[str] = mapped_column(String(100))
    account_number: Mapped[str] = mapped_column(String(30))
    account_holder: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    bank_reason: Mapped[str | None] = mapped_column(Text)
    transfer_reference: Mapped[str | None] = mapped_column(String(100))
    transfer_date: Mapped[date | None] = mapped_column(Date)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("batch_id", "grant_id", name="uq_disbursement_items_grant"),
        # An application waits in at most one bank transfer at a time.
        Index(
            "uq_disbursement_items_one_pending",
            "grant_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )


class LeaveDay(Base):
    """A collective leave day (cuti bersama): not a working day, besides the public holidays."""

    __tablename__ = "leave_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    description: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MissedDeadline(Base):
    """A deadline announced as passed; the key makes a second announcement impossible."""

    __tablename__ = "missed_deadlines"

    grant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("grants.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(20), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True, default="passed")
    announced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
