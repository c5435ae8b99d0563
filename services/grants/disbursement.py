"""Disbursement batches: approved applications of one programme collected into one bank
transfer file, and the bank's result file applied back. Applying the same result twice
changes nothing: an item settles once."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.grants.applications import Actor, take_action
from services.grants.budget import lock_program
from services.grants.calendar import WorkingCalendar
from services.grants.guards import bank_account_known
from services.grants.models import BatchItem, DisbursementBatch, Grant, GroupProjection, Program
from services.grants.programs import find_program
from shared.db import utcnow
from shared.errors import Conflict, DomainError, InvalidInput, NotFound
from shared.events.outbox import Outbox
from shared.exports import safe_cell
from shared.workflow import GuardsFailed

# The transfer file the bank receives, and the result file it sends back (docs/grants.md).
TRANSFER_COLUMNS = ("reference", "bank_name", "account_number", "account_holder", "amount")
RESULT_COLUMNS = ("reference", "status", "transfer_reference", "transfer_date", "reason")
SUCCESS = {"success", "berhasil", "ok"}
FAILURE = {"failed", "gagal", "rejected"}
MAX_ITEMS = 20_000


def create_batch(
    session: Session, program_id: uuid.UUID, grant_ids: list[uuid.UUID] | None, *, actor: Actor
) -> tuple[DisbursementBatch, list[dict]]:
    """Collect approved applications (those listed, or every one waiting) into a batch; each
    listed one that cannot go is reported with its reason."""
    program = find_program(session, program_id, actor.scope)
    statement = (
        select(Grant)
        .where(Grant.program_id == program.id, actor.scope.where(Grant.region_code))
        .order_by(Grant.id)
        .with_for_update()
    )
    if grant_ids is not None:
        statement = statement.where(Grant.id.in_(grant_ids))
    else:
        statement = statement.where(Grant.stage == "approved").limit(MAX_ITEMS)
    grants = {g.id: g for g in session.scalars(statement)}
    pending = set(
        session.scalars(
            select(BatchItem.grant_id).where(
                BatchItem.grant_id.in_(list(grants)), BatchItem.status == "pending"
            )
        )
    )
    groups = {
        g.id: g
        for g in session.scalars(
            select(GroupProjection).where(
                GroupProjection.id.in_({g.group_id for g in grants.values()})
            )
        )
    }
    batch = DisbursementBatch(
        id=uuid.uuid4(),
        program_id=program.id,
        region_code=actor.scope.prefix,
        status="open",
        created_by=actor.sub,
        created_at=utcnow(),
    )
    session.add(batch)
    # Written before its items: with no relationship() between them, the unit of work
    # does not order the two inserts, and an item first breaks its foreign key.
    session.flush()
    outcomes: list[dict] = []
    wanted = grant_ids if grant_ids is not None else list(grants)
    for grant_id in dict.fromkeys(wanted):
        grant = grants.get(grant_id)
        try:
            if grant is None:
                raise NotFound("No application of this programme with this id in your region.")
            if grant.stage != "approved":
                raise Conflict(
                    f"Only an approved application is paid; this one is {grant.stage}.",
                    status_now=grant.stage,
                )
            if grant.id in pending:
                raise Conflict("The application already waits in another bank transfer.")
            group = groups.get(grant.group_id)
            failures = bank_account_known(grant, _AccountCheck(group))
            if failures:
                raise GuardsFailed(
                    "The group has no bank account to pay to.",
                    errors=[
                        {
                            "guard": "bank_account_known",
                            "message": f.message,
                            "message_id": f.message_id,
                        }
                        for f in failures
                    ],
                )
        except DomainError as exc:
            outcomes.append({"grant_id": grant_id, "ok": False, "error": exc})
            continue
        account = group.bank_account
        session.add(
            BatchItem(
                batch_id=batch.id,
                grant_id=grant.id,
                reference=f"UEP-{batch.id.hex[:8].upper()}-{len(outcomes) + 1:05d}",
                amount=grant.amount,
                bank_name=account["bank_name"],
                account_number=account["account_number"],
                account_holder=account["account_holder"],
                status="pending",
            )
        )
        outcomes.append({"grant_id": grant_id, "ok": True, "stage": grant.stage})
    if not any(o["ok"] for o in outcomes):
        raise Conflict(
            "No application in this request can be paid; no batch was made.",
            items_failed=len(outcomes),
        )
    session.flush()
    return batch, outcomes


class _AccountCheck:
    """The part of a workflow step the bank account guard reads."""

    def __init__(self, group: GroupProjection | None):
        self.group = group


def items_of(session: Session, batch_id: uuid.UUID) -> list[BatchItem]:
    return list(
        session.scalars(
            select(BatchItem).where(BatchItem.batch_id == batch_id).order_by(BatchItem.id)
        )
    )


def find_batch(session: Session, batch_id: uuid.UUID, actor: Actor) -> DisbursementBatch:
    batch = session.get(DisbursementBatch, batch_id)
    if batch is None or not actor.scope.covers(batch.region_code):
        raise NotFound("No disbursement batch with this id in your region.")
    return batch


def transfer_file(items: list[BatchItem]) -> str:
    """The bank transfer file: one row per transfer, in the documented layout."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TRANSFER_COLUMNS)
    for item in items:
        if item.status == "pending":
            writer.writerow(
                [
                    item.reference,
                    safe_cell(item.bank_name),
                    item.account_number,
                    safe_cell(item.account_holder),
                    item.amount,
                ]
            )
    return out.getvalue()


def read_result_file(content: bytes) -> list[dict]:
    """The bank's result rows, checked; InvalidInput naming each bad row and column."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput.field("file", "The result file must be UTF-8 CSV.") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in RESULT_COLUMNS[:2] if c not in header]
    if missing:
        raise InvalidInput.field(
            "file", f"The result file lacks the columns: {', '.join(missing)}."
        )
    rows, problems = [], []
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k}
        status = row.get("status", "").lower()
        parsed = {
            "row": number,
            "reference": row.get("reference", ""),
            "reason": row.get("reason") or None,
        }
        if not parsed["reference"]:
            problems.append({"field": f"file.{number}.reference", "message": "empty"})
        if status in SUCCESS:
            parsed["status"] = "success"
            parsed["transfer_reference"] = row.get("transfer_reference", "")
            if not parsed["transfer_reference"]:
                problems.append(
                    {
                        "field": f"file.{number}.transfer_reference",
                        "message": "needed for a success",
                    }
                )
            try:
                parsed["transfer_date"] = date.fromisoformat(row.get("transfer_date", ""))
            except ValueError:
                problems.append(
                    {
                        "field": f"file.{number}.transfer_date",
                        "message": "needed as YYYY-MM-DD for a success",
                    }
                )
        elif status in FAILURE:
            parsed["status"] = "failed"
        else:
            problems.append(
                {"field": f"file.{number}.status", "message": "Must be success or failed."}
            )
        rows.append(parsed)
        if len(rows) > MAX_ITEMS:
            raise InvalidInput.field("file", f"More than {MAX_ITEMS} rows.")
    if problems:
        raise InvalidInput("The result file has bad rows; nothing was applied.", errors=problems)
    return rows


def apply_result(
    session: Session,
    outbox: Outbox,
    batch: DisbursementBatch,
    rows: list[dict],
    *,
    actor: Actor,
    now: datetime | None = None,
) -> list[dict]:
    """Mark each transfer disbursed or failed as the bank says; a settled item stays as it is
    (the same file twice changes nothing)."""
    now = now or utcnow()
    items = {
        i.reference: i
        for i in session.scalars(
            select(BatchItem).where(BatchItem.batch_id == batch.id).with_for_update()
        )
    }
    grants = {
        g.id: g
        for g in session.scalars(
            select(Grant)
            .where(Grant.id.in_([i.grant_id for i in items.values()]))
            .order_by(Grant.id)
            .with_for_update()
        )
    }
    program: Program = lock_program(session, batch.program_id)
    calendar = WorkingCalendar.load(session)
    outcomes = []
    for row in rows:
        item = items.get(row["reference"])
        outcome = {"row": row["row"], "reference": row["reference"]}
        if item is None:
            outcomes.append(
                {**outcome, "ok": False, "error": NotFound("No such transfer in this batch.")}
            )
            continue
        outcome["grant_id"] = item.grant_id
        if item.status != "pending":
            same = (item.status == "disbursed") == (row["status"] == "success")
            if same:
                outcomes.append({**outcome, "ok": True, "status": item.status, "unchanged": True})
            else:
                outcomes.append(
                    {
                        **outcome,
                        "ok": False,
                        "error": Conflict(
                            f"The transfer was already settled as {item.status}.",
                            status_now=item.status,
                        ),
                    }
                )
            continue
        if row["status"] == "failed":
            item.status, item.bank_reason, item.settled_at = "failed", row["reason"], now
            outcomes.append({**outcome, "ok": True, "status": "failed", "unchanged": False})
            continue
        try:
            take_action(
                session,
                outbox,
                grants[item.grant_id],
                "disburse",
                actor=actor,
                data={
                    "transfer_reference": row["transfer_reference"],
                    "transfer_date": row["transfer_date"].isoformat(),
                    "amount": item.amount,
                },
                program=program,
                calendar=calendar,
                now=now,
            )
        except DomainError as exc:
            outcomes.append({**outcome, "ok": False, "error": exc})
            continue
        item.status, item.settled_at = "disbursed", now
        item.transfer_reference, item.transfer_date = (
            row["transfer_reference"],
            row["transfer_date"],
        )
        outcomes.append({**outcome, "ok": True, "status": "disbursed", "unchanged": False})
    if all(i.status != "pending" for i in items.values()) and batch.status != "settled":
        batch.status, batch.settled_at = "settled", now
    return outcomes
