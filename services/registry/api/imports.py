"""/api/v1/imports: upload a CSV or XLSX of groups and members; the worker creates them."""

from __future__ import annotations

import logging
import uuid

import marshmallow as ma
from flask import url_for
from flask.views import MethodView
from flask_smorest.fields import Upload

from services.registry.api.groups import WRITERS
from services.registry.imports import create_import, find_import, list_imports
from services.registry.spreadsheet import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from services.registry.tasks import enqueue_import
from shared.api import Blueprint
from shared.auth import current_principal
from shared.http import commit_with_response, current_context
from shared.pagination import PageArgs, page_of, paginate
from shared.shapes import Output
from shared.validation import Choice, Schema

log = logging.getLogger(__name__)

blp = Blueprint(
    "imports",
    __name__,
    url_prefix="/api/v1/imports",
    description="Bulk imports of groups and their members from CSV or XLSX files.",
)

# Imports hold raw identity numbers: those who may upload them, and auditors.
IMPORT_READERS = (*WRITERS, "auditor")

IMPORT_STATUSES = ("queued", "processing", "done", "failed")


class ImportUploadSchema(Schema):
    file = Upload(
        required=True,
        metadata={
            "description": "A .csv (UTF-8) or .xlsx file, one row per member, the group's "
            f"columns repeated on each row. Required columns: {', '.join(REQUIRED_COLUMNS)}; "
            f"optional: {', '.join(OPTIONAL_COLUMNS)}. The upload checks the file's type, a "
            "CSV's encoding and header, and a workbook's archive; the rows (and a workbook's "
            "header) are read by the worker. A body larger than the registry's import limit "
            "(KUBE_MAX_IMPORT_BYTES, 200 MiB unless configured) is a 413."
        },
    )


class RowErrorSchema(Output):
    row = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "the row as a spreadsheet numbers it (the header is row 1)"},
    )
    group = ma.fields.String(allow_none=True)
    field = ma.fields.String(allow_none=True, metadata={"description": "the column"})
    message = ma.fields.String()


class ImportSchema(Output):
    id = ma.fields.UUID()
    filename = ma.fields.String()
    file_format = Choice("ImportFileFormat", ("csv", "xlsx"))
    status = Choice("ImportStatus", IMPORT_STATUSES)
    created_by = ma.fields.String()
    created_at = ma.fields.AwareDateTime()
    started_at = ma.fields.AwareDateTime(allow_none=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    total_rows = ma.fields.Integer()
    processed_rows = ma.fields.Integer()
    groups_created = ma.fields.Integer()
    groups_unchanged = ma.fields.Integer(
        metadata={"description": "groups that already existed (same name and village)"}
    )
    groups_rejected = ma.fields.Integer(
        metadata={"description": "groups not created because at least one of their rows is bad"}
    )
    row_errors = ma.fields.List(ma.fields.Nested(RowErrorSchema))
    error = ma.fields.String(allow_none=True)


@blp.route("")
class Imports(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_of(ImportSchema))
    @blp.operation("list_imports", roles=IMPORT_READERS)
    def get(self, args):
        """List the imports made within the caller's region, newest first."""
        statement = list_imports(current_principal().scope)
        return paginate(current_context().db.session, statement, args["page"], args["page_size"])

    @blp.arguments(ImportUploadSchema, location="files")
    @blp.response(202, ImportSchema)
    @blp.operation("create_import", roles=WRITERS, location=True)
    def post(self, files):
        """Upload a file of groups and members; follow Location to watch its progress."""
        principal = current_principal()
        upload = files["file"]
        context = current_context()
        job = create_import(
            context.db.session,
            filename=upload.filename or "",
            # werkzeug has spooled the file part to a temporary file as it arrived.
            file=upload.stream,
            scope=principal.scope,
            actor=principal.sub,
        )

        def send_to_worker():
            try:
                enqueue_import(context.celery, context.settings.queue, job.id)
            except Exception as exc:
                # Stored and queued: the requeue task sends it once Redis is back.
                log.warning(
                    "import not sent to the worker; it will be requeued",
                    extra={"import_id": str(job.id), "error": f"{type(exc).__name__}: {exc}"},
                )

        # The worker reads the import, so it is queued only once the import is committed.
        commit_with_response(then=send_to_worker)
        return job, 202, {"Location": url_for("imports.ImportById", import_id=job.id)}


@blp.route("/<uuid:import_id>")
class ImportById(MethodView):
    @blp.response(200, ImportSchema)
    @blp.operation("get_import", roles=IMPORT_READERS)
    def get(self, import_id: uuid.UUID):
        """Read an import's progress and, per row, what was wrong."""
        return find_import(current_context().db.session, import_id, current_principal().scope)
