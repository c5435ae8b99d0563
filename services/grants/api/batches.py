"""/api/v1/disbursement-batches: bank transfer files out, the bank's result files back."""

from __future__ import annotations

import uuid

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest.fields import Upload
from sqlalchemy import func, select

from services.grants.api.common import (
    PAYMENT_READERS,
    TREASURERS,
    current_actor,
    outcome_view,
)
from services.grants.disbursement import (
    RESULT_COLUMNS,
    TRANSFER_COLUMNS,
    apply_result,
    create_batch,
    find_batch,
    items_of,
    read_result_file,
    transfer_file,
)
from services.grants.models import BatchItem, DisbursementBatch
from services.grants.schemas import BatchInput, BatchOutcomeSchema, BatchSchema, ResultOutcomeSchema
from shared.api import Blueprint
from shared.http import commit_with_response, current_context
from shared.pagination import PageArgs, page_of, paginate
from shared.validation import Schema

blp = Blueprint(
    "batches",
    __name__,
    url_prefix="/api/v1/disbursement-batches",
    description="Disbursement batches: one bank transfer file for many approved applications.",
)


class ResultUploadSchema(Schema):
    file = Upload(
        required=True,
        metadata={
            "description": "The bank's result, UTF-8 CSV with the columns "
            f"{', '.join(RESULT_COLUMNS)}; status is success or failed, transfer_date "
            "YYYY-MM-DD (needed, with transfer_reference, for a success)."
        },
    )


def batch_view(batch: DisbursementBatch) -> dict:
    session = current_context().db.session
    rows = session.execute(
        select(BatchItem.status, func.count(), func.sum(BatchItem.amount))
        .where(BatchItem.batch_id == batch.id)
        .group_by(BatchItem.status)
    ).all()
    counts = {status: count for status, count, _ in rows}
    total = sum(amount for _, _, amount in rows)
    return {
        "id": batch.id,
        "program_id": batch.program_id,
        "status": batch.status,
        "created_by": batch.created_by,
        "created_at": batch.created_at,
        "settled_at": batch.settled_at,
        "items": sum(counts.values()),
        "pending": counts.get("pending", 0),
        "disbursed": counts.get("disbursed", 0),
        "failed": counts.get("failed", 0),
        "total_amount": int(total),
    }


@blp.route("")
class Batches(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(BatchSchema))
    @blp.operation("list_disbursement_batches", roles=PAYMENT_READERS)
    def get(self, args):
        """List the batches made within the caller's region, newest first."""
        statement = (
            select(DisbursementBatch)
            .where(current_actor().scope.where(DisbursementBatch.region_code))
            .order_by(DisbursementBatch.created_at.desc(), DisbursementBatch.id)
        )
        page = paginate(current_context().db.session, statement, args["page"], args["page_size"])
        return {**page, "items": [batch_view(b) for b in page["items"]]}

    @blp.arguments(BatchInput)
    @blp.response(201, BatchOutcomeSchema)
    @blp.operation("create_disbursement_batch", roles=TREASURERS, problems=[409], location=True)
    def post(self, data):
        """Collect approved applications of a programme into one bank transfer; each listed
        one that cannot be paid is reported with its problem."""
        batch, outcomes = create_batch(
            current_context().db.session,
            data["program_id"],
            data["grant_ids"],
            actor=current_actor(),
        )
        commit_with_response()
        body = {"batch": batch_view(batch), "items": [outcome_view(o) for o in outcomes]}
        return body, 201, {"Location": url_for("batches.BatchById", batch_id=batch.id)}


@blp.route("/<uuid:batch_id>")
class BatchById(MethodView):
    @blp.response(200, BatchSchema)
    @blp.operation("get_disbursement_batch", roles=PAYMENT_READERS)
    def get(self, batch_id: uuid.UUID):
        """Read a batch: its transfers by status and their total."""
        return batch_view(find_batch(current_context().db.session, batch_id, current_actor()))


@blp.route("/<uuid:batch_id>/transfer-file")
class TransferFile(MethodView):
    @blp.response(
        200,
        {"type": "string"},
        content_type="text/csv",
        description=f"CSV with the columns {', '.join(TRANSFER_COLUMNS)}; one row per transfer "
        "still waiting for the bank's result.",
    )
    @blp.operation("get_transfer_file", roles=PAYMENT_READERS)
    def get(self, batch_id: uuid.UUID):
        """Download the bank transfer file (CSV) of a batch."""
        session = current_context().db.session
        batch = find_batch(session, batch_id, current_actor())
        return Response(
            transfer_file(items_of(session, batch.id)),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="transfer-{batch.id}.csv"',
            },
        )


@blp.route("/<uuid:batch_id>/result")
class BatchResult(MethodView):
    @blp.arguments(ResultUploadSchema, location="files")
    @blp.response(200, ResultOutcomeSchema)
    @blp.operation("apply_bank_result", roles=TREASURERS, problems=[409])
    def post(self, files, batch_id: uuid.UUID):
        """Upload the bank's result file: each transfer is marked disbursed (the application
        moves on, the budget with it) or failed with the bank's reason. Sending the same file
        again changes nothing."""
        context = current_context()
        session = context.db.session
        actor = current_actor()
        batch = find_batch(session, batch_id, actor)
        rows = read_result_file(files["file"].read())
        outcomes = apply_result(session, context.outbox, batch, rows, actor=actor)
        commit_with_response()
        return {"batch": batch_view(batch), "rows": [outcome_view(o) for o in outcomes]}
