"""The tamper-evident trail of every application: one record per step, each holding the hash
of the one before it, so an edited, removed or inserted record breaks the chain."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from services.grants.models import AuditRecord, Grant

GENESIS = "0" * 64


def _canonical(value):
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def record_hash(record: AuditRecord) -> str:
    """The hash of a record's content and of the record before it."""
    content = {
        "grant_id": record.grant_id,
        "seq": record.seq,
        "actor": record.actor,
        "role": record.role,
        "action": record.action,
        "from": record.from_stage,
        "to": record.to_stage,
        "comment": record.comment,
        "data": record.data,
        "at": record.at,
        "request_id": record.request_id,
        "workflow_key": record.workflow_key,
        "workflow_version": record.workflow_version,
        "prev_hash": record.prev_hash,
    }
    text = json.dumps(
        {k: _canonical(v) for k, v in content.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def record_step(
    session: Session,
    grant: Grant,
    *,
    actor: str,
    role: str,
    action: str,
    from_stage: str | None,
    comment: str | None,
    data: dict,
    at: datetime,
    request_id: str | None,
    head: Row | None = None,
) -> AuditRecord:
    """Append a step to the grant's chain (the caller holds the grant's row lock); `head` is
    the chain's last record as `chain_heads` read it under that lock, else it is read here."""
    last = head
    if last is None:
        last = session.execute(
            select(AuditRecord.seq, AuditRecord.hash)
            .where(AuditRecord.grant_id == grant.id)
            .order_by(AuditRecord.seq.desc())
            .limit(1)
        ).first()
    record = AuditRecord(
        grant_id=grant.id,
        seq=(last.seq + 1) if last else 1,
        actor=actor,
        role=role,
        action=action,
        from_stage=from_stage,
        to_stage=grant.stage,
        comment=comment,
        # Stored as JSON; hashed as it reads back (dates as ISO text).
        data=json.loads(json.dumps(data, default=str)),
        at=at.astimezone(UTC),
        request_id=request_id,
        workflow_key=grant.workflow_key,
        workflow_version=grant.workflow_version,
        prev_hash=last.hash if last else GENESIS,
    )
    record.hash = record_hash(record)
    session.add(record)
    return record


def chain_heads(session: Session, grant_ids: list[uuid.UUID]) -> dict[uuid.UUID, Row]:
    """The last record (seq, hash) of each grant's chain, in one query; the caller holds the
    grants' row locks, so no step is appended before it uses them."""
    rows = session.execute(
        select(AuditRecord.grant_id, AuditRecord.seq, AuditRecord.hash)
        .where(AuditRecord.grant_id.in_(grant_ids))
        .ext(distinct_on(AuditRecord.grant_id))
        .order_by(AuditRecord.grant_id, AuditRecord.seq.desc())
    )
    return {row.grant_id: row for row in rows}


@dataclass(frozen=True)
class BrokenLink:
    grant_id: uuid.UUID
    seq: int
    reason: str


def verify_chains(session: Session, batch: int = 5000) -> Iterator[BrokenLink]:
    """The first broken link of every broken chain, reading the trail in (grant, seq) order.
    A chain must also end where its application stands, so a record removed from its end is
    caught too."""
    current, expected_prev, expected_seq, broken = None, GENESIS, 1, False
    last: tuple[AuditRecord, str] | None = None
    rows = session.execute(
        select(AuditRecord, Grant.stage)
        .join(Grant, Grant.id == AuditRecord.grant_id)
        .order_by(AuditRecord.grant_id, AuditRecord.seq)
        .execution_options(yield_per=batch)
    )
    for record, stage in rows:
        if record.grant_id != current:
            if last is not None and not broken and last[0].to_stage != last[1]:
                yield _cut_short(*last)
            current, expected_prev, expected_seq, broken = record.grant_id, GENESIS, 1, False
        last = (record, stage)
        if broken:
            continue
        reason = None
        if record.seq != expected_seq:
            reason = f"record {expected_seq} is missing"
        elif record.prev_hash != expected_prev:
            reason = "it does not follow the record before it"
        elif record_hash(record) != record.hash:
            reason = "its content was changed after it was written"
        if reason:
            broken = True
            yield BrokenLink(record.grant_id, record.seq, reason)
        expected_prev, expected_seq = record.hash, record.seq + 1
    if last is not None and not broken and last[0].to_stage != last[1]:
        yield _cut_short(*last)


def _cut_short(record: AuditRecord, stage: str) -> BrokenLink:
    return BrokenLink(
        record.grant_id,
        record.seq + 1,
        f"the chain ends at {record.to_stage} but the application is {stage}: "
        "records are missing from its end",
    )
