"""Every service's dead-letter API: list the events its handlers gave up on, replay them."""

from __future__ import annotations

import uuid

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from shared.api import Blueprint
from shared.auth import current_principal
from shared.db import utcnow
from shared.errors import Unavailable
from shared.events.outbox import CeleryPublisher
from shared.http import commit_with_response, current_context
from shared.pagination import PageArgs, page_of, paginate
from shared.shapes import Output


class DeadLetterSchema(Output):
    id = ma.fields.UUID(dump_only=True)
    event_id = ma.fields.UUID(dump_only=True, allow_none=True)
    event_type = ma.fields.String(dump_only=True, allow_none=True)
    region_code = ma.fields.String(dump_only=True, allow_none=True)
    error = ma.fields.String(dump_only=True)
    attempts = ma.fields.Integer(dump_only=True)
    failed_at = ma.fields.AwareDateTime(dump_only=True)
    replayed_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    replay_count = ma.fields.Integer(dump_only=True)
    envelope = ma.fields.Dict(
        dump_only=True, metadata={"description": "the event as it was sent: its envelope"}
    )


class DeadLetterQuery(PageArgs):
    status = ma.fields.String(
        load_default="pending", validate=ma.validate.OneOf(["pending", "replayed", "all"])
    )


def dead_letter_blueprint() -> Blueprint:
    """A fresh blueprint, so each service app registers its own copy."""
    blp = Blueprint(
        "dead_letters",
        __name__,
        url_prefix="/api/v1/dead-letters",
        description="Events this service's handlers could not process after their retries. "
        "A caller sees those about their own region; events about no region only nationwide.",
    )

    @blp.route("")
    class DeadLetters(MethodView):
        @blp.arguments(DeadLetterQuery, location="query")
        @blp.response(200, page_of(DeadLetterSchema))
        @blp.operation("list_dead_letters", roles=("admin", "auditor"))
        def get(self, args):
            """List dead letters, newest first (admin, auditor)."""
            principal = current_principal()
            model = current_context().tables.dead_letters
            statement = (
                select(model)
                .where(principal.scope.where(model.region_code))
                .order_by(model.failed_at.desc(), model.id)
            )
            if args["status"] == "pending":
                statement = statement.where(model.replayed_at.is_(None))
            elif args["status"] == "replayed":
                statement = statement.where(model.replayed_at.is_not(None))
            return paginate(
                current_context().db.session, statement, args["page"], args["page_size"]
            )

    @blp.route("/<uuid:dead_letter_id>")
    class DeadLetter(MethodView):
        @blp.response(200, DeadLetterSchema)
        @blp.operation("get_dead_letter", roles=("admin", "auditor"))
        def get(self, dead_letter_id: uuid.UUID):
            """Read one dead letter with its event (admin, auditor)."""
            principal = current_principal()
            return _find(dead_letter_id, principal)

    @blp.route("/<uuid:dead_letter_id>/replay")
    class Replay(MethodView):
        @blp.response(202, DeadLetterSchema)
        @blp.operation("replay_dead_letter", roles=("admin",))
        def post(self, dead_letter_id: uuid.UUID):
            """Send the event to this service's worker again (admin)."""
            principal = current_principal()
            context = current_context()
            letter = _find(dead_letter_id, principal)
            publisher = CeleryPublisher(context.celery, context.settings.queue_prefix)
            try:
                publisher.publish(context.settings.service, letter.envelope)
            except Exception as exc:
                raise Unavailable("The queue is unreachable; try again shortly.") from exc
            letter.replayed_at = utcnow()
            letter.replay_count += 1
            commit_with_response()
            return letter

    return blp


def _find(dead_letter_id: uuid.UUID, principal):
    context = current_context()
    model = context.tables.dead_letters
    return principal.scope.one(
        context.db.session,
        select(model).where(model.id == dead_letter_id),
        model.region_code,
        what="dead letter",
    )
