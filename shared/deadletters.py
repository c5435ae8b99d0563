"""Every service's dead-letter API: list the events its handlers gave up on, replay them."""

from __future__ import annotations

import uuid

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from shared.auth import require_roles
from shared.db import utcnow
from shared.errors import NotFound, ServiceUnavailable
from shared.events.outbox import CeleryPublisher
from shared.http import kube
from shared.pagination import PageArgs, page_of, paginate


class DeadLetterSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    event_id = ma.fields.UUID(dump_only=True, allow_none=True)
    event_type = ma.fields.String(dump_only=True, allow_none=True)
    error = ma.fields.String(dump_only=True)
    attempts = ma.fields.Integer(dump_only=True)
    failed_at = ma.fields.AwareDateTime(dump_only=True)
    replayed_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    replay_count = ma.fields.Integer(dump_only=True)
    envelope = ma.fields.Dict(dump_only=True)


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
        description="Events this service's handlers could not process after their retries.",
    )

    @blp.route("")
    class DeadLetters(MethodView):
        @blp.arguments(DeadLetterQuery, location="query")
        @blp.response(200, page_of(DeadLetterSchema))
        def get(self, args):
            """List dead letters, newest first (admin, auditor)."""
            require_roles("admin", "auditor")
            model = kube().models.DeadLetter
            statement = select(model).order_by(model.failed_at.desc())
            if args["status"] == "pending":
                statement = statement.where(model.replayed_at.is_(None))
            elif args["status"] == "replayed":
                statement = statement.where(model.replayed_at.is_not(None))
            return paginate(kube().db.session, statement, args["page"], args["page_size"])

    @blp.route("/<uuid:dead_letter_id>")
    class DeadLetter(MethodView):
        @blp.response(200, DeadLetterSchema)
        def get(self, dead_letter_id: uuid.UUID):
            """Read one dead letter with its event (admin, auditor)."""
            require_roles("admin", "auditor")
            return _find(dead_letter_id)

    @blp.route("/<uuid:dead_letter_id>/replay")
    class Replay(MethodView):
        @blp.response(202, DeadLetterSchema)
        def post(self, dead_letter_id: uuid.UUID):
            """Send the event to this service's worker again (admin)."""
            require_roles("admin")
            context = kube()
            letter = _find(dead_letter_id)
            publisher = CeleryPublisher(context.celery, context.settings.queue_prefix)
            try:
                publisher.publish(context.settings.service, letter.envelope)
            except Exception as exc:
                raise ServiceUnavailable("The queue is unreachable; try again shortly.") from exc
            letter.replayed_at = utcnow()
            letter.replay_count += 1
            context.db.session.commit()
            return letter

    return blp


def _find(dead_letter_id: uuid.UUID):
    letter = kube().db.session.get(kube().models.DeadLetter, dead_letter_id)
    if letter is None:
        raise NotFound("No dead letter with this id.")
    return letter
