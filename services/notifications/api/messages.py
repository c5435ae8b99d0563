"""/api/v1/messages: every message sent or to be sent, its delivery, and a retry."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from sqlalchemy import select

from services.notifications.delivery import mask, requeue
from services.notifications.models import Message
from services.notifications.schemas import MessageQuerySchema, MessageSchema
from services.notifications.tasks import send_deliveries
from shared.api import Blueprint
from shared.auth import current_principal
from shared.db import utcnow
from shared.http import commit_with_response, current_context
from shared.pagination import page_of, paginate
from shared.tokens import READERS

blp = Blueprint(
    "messages",
    __name__,
    url_prefix="/api/v1/messages",
    description="Messages to groups and offices, one per event, recipient and channel.",
)

# Who may send a failed message again.
RETRIERS = ("verifikator", "kepala_dinas", "admin", "service")


def message_view(message: Message) -> Message:
    """The message as lists show it: the recipient masked."""
    message.recipient_masked = mask(message.recipient)
    return message


def find_message(message_id: uuid.UUID, *, lock: bool = False) -> Message:
    statement = select(Message).where(Message.id == message_id)
    if lock:
        statement = statement.with_for_update()
    return current_principal().scope.one(
        current_context().db.session, statement, Message.region_code, what="message"
    )


@blp.route("")
class Messages(MethodView):
    @blp.arguments(MessageQuerySchema, location="query")
    @blp.response(200, page_of(MessageSchema))
    @blp.operation("list_messages", roles=READERS)
    def get(self, args):
        """List messages in the caller's region, newest first (filters: group, grant,
        broadcast, status, channel, since, until)."""
        statement = (
            select(Message)
            .where(current_principal().scope.where(Message.region_code))
            .order_by(Message.created_at.desc(), Message.id)
        )
        for key in ("group_id", "grant_id", "broadcast_id", "status", "channel"):
            if args.get(key) is not None:
                statement = statement.where(getattr(Message, key) == args[key])
        if args.get("since"):
            statement = statement.where(Message.created_at >= args["since"])
        if args.get("until"):
            statement = statement.where(Message.created_at < args["until"])
        page = paginate(current_context().db.session, statement, args["page"], args["page_size"])
        return {**page, "items": [message_view(m) for m in page["items"]]}


@blp.route("/<uuid:message_id>")
class MessageById(MethodView):
    @blp.response(200, MessageSchema)
    @blp.operation("get_message", roles=READERS)
    def get(self, message_id: uuid.UUID):
        """Read a message and its delivery."""
        return message_view(find_message(message_id))


@blp.route("/<uuid:message_id>/retry")
class MessageRetry(MethodView):
    @blp.response(200, MessageSchema)
    @blp.operation("retry_message", roles=RETRIERS, problems=[409])
    def post(self, message_id: uuid.UUID):
        """Send a failed message again (a new attempt; its history stays)."""
        context = current_context()
        message = find_message(message_id, lock=True)
        requeue(message, utcnow())
        commit_with_response(
            then=lambda: send_deliveries(context.celery, context.settings.queue, [message_id])
        )
        return message_view(message)
