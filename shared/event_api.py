"""Every service's event API: its outbox as an ordered feed for consumers that catch up
(`service` role), and the lag report of the feeds it consumes."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select
from webargs.fields import DelimitedList

from shared.api import Blueprint
from shared.events.contracts import CONTRACTS
from shared.events.feed import Position, feed_head, read_feed
from shared.http import current_context
from shared.shapes import Output
from shared.validation import Schema

POSITION = {"pattern": r"^[0-9]{1,20}\.[0-9]{1,20}$", "example": "7401.1532"}


class PositionField(ma.fields.String):
    """An event's place in a feed, written `xact_id.sequence`."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return Position.parse(text)
        except ValueError as exc:
            raise ma.ValidationError("Must be a feed position such as 7401.1532.") from exc


class FeedQuery(Schema):
    after = PositionField(
        load_default=Position(),
        metadata={"description": "the position of the last event read (start: 0.0)", **POSITION},
    )
    types = DelimitedList(
        ma.fields.String(validate=ma.validate.OneOf(sorted(CONTRACTS))),
        load_default=list,
        metadata={"description": "only these event types (comma-separated); all if absent"},
    )
    limit = ma.fields.Integer(load_default=200, validate=ma.validate.Range(min=1, max=1000))


class FeedItem(Output):
    position = ma.fields.String(metadata=POSITION)
    envelope = ma.fields.Dict()


class EventFeed(Output):
    items = ma.fields.List(ma.fields.Nested(FeedItem))
    next = ma.fields.String(
        metadata={"description": "pass as `after` for the next page", **POSITION}
    )
    head = ma.fields.String(metadata={"description": "the newest event served", **POSITION})


class LagSchema(Output):
    producer = ma.fields.String()
    settled_up_to = ma.fields.String(
        metadata={"description": "every event up to here is applied or dead-lettered"}
    )
    head = ma.fields.String(metadata={"description": "the producer's newest event seen"})
    unsettled = ma.fields.Integer(
        metadata={"description": "events after the cursor not yet applied at the last pass"}
    )
    resent = ma.fields.Integer(
        metadata={"description": "events the catch-up has had to send again, in total"}
    )
    checked_at = ma.fields.AwareDateTime(allow_none=True)
    error = ma.fields.String(allow_none=True)


class LagReport(Output):
    consumer = ma.fields.String()
    producers = ma.fields.List(ma.fields.Nested(LagSchema))


def event_blueprint() -> Blueprint:
    """A fresh blueprint, so each service app registers its own copy."""
    blp = Blueprint(
        "events",
        __name__,
        url_prefix="/api/v1/events",
        description="This service's events as an ordered feed, and how far it has applied "
        "the feeds of the services it listens to.",
    )

    @blp.route("")
    class Feed(MethodView):
        @blp.arguments(FeedQuery, location="query")
        @blp.response(200, EventFeed)
        @blp.operation(
            "read_event_feed",
            roles=("service",),
            nationwide="The event feed carries every region's events",
        )
        def get(self, args):
            """Read this service's events in commit order (internal services only, with a
            nationwide token: the feed carries every region's events, contacts included)."""
            context = current_context()
            outbox, session = context.tables.outbox, context.db.session
            rows = read_feed(session, outbox, args["after"], args["types"], args["limit"])
            items = [
                {"position": str(Position(r.xact_id, r.sequence)), "envelope": r.envelope}
                for r in rows
            ]
            return {
                "items": items,
                "next": items[-1]["position"] if items else str(args["after"]),
                "head": str(feed_head(session, outbox, args["types"])),
            }

    @blp.route("/lag")
    class Lag(MethodView):
        @blp.response(200, LagReport)
        @blp.operation("get_event_lag", roles=("admin", "auditor", "service"))
        def get(self):
            """How far this service has applied each producer's events (admin, auditor)."""
            context = current_context()
            cursors = context.tables.cursors
            rows = context.db.session.scalars(select(cursors).order_by(cursors.producer))
            return {
                "consumer": context.service.name,
                "producers": [
                    {
                        "producer": c.producer,
                        "settled_up_to": str(Position(c.xact_id, c.sequence)),
                        "head": str(Position(c.head_xact_id, c.head_sequence)),
                        "unsettled": c.unsettled,
                        "resent": c.resent,
                        "checked_at": c.checked_at,
                        "error": c.error,
                    }
                    for c in rows
                ],
            }

    return blp
