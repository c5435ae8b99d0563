"""/api/v1/providers/{name}/…: what SMS gateways tell us back, authenticated by a shared
secret in a header (gateways hold no bearer token): delivery receipts, and replies (STOP)."""

from __future__ import annotations

import hmac

from flask import request
from flask.views import MethodView
from sqlalchemy import select

from services.notifications.api.outreach import normalize_phone
from services.notifications.delivery import apply_receipt
from services.notifications.models import Message, OptOut
from services.notifications.schemas import InboundInput, ReceiptInput, ReceiptOutcomeSchema
from shared.api import Blueprint
from shared.config import env_str
from shared.db import utcnow
from shared.errors import InvalidInput, Unauthenticated
from shared.http import commit_with_response, current_context

blp = Blueprint(
    "providers",
    __name__,
    url_prefix="/api/v1/providers",
    description="Callbacks from SMS gateways: delivery receipts and replies.",
)

SECRET_HEADER = "X-Provider-Secret"  # noqa: S105 - the header's name, not a secret
SECURITY = {"providerSecret": {"type": "apiKey", "in": "header", "name": SECRET_HEADER}}
STOP_WORDS = {"STOP", "BERHENTI", "UNREG"}


@blp.before_request
def require_secret() -> None:
    """The gateway's shared secret (KUBE_PROVIDER_CALLBACK_SECRET), compared in constant time,
    before the body is read: an unauthenticated caller learns nothing of the fields."""
    expected = env_str("KUBE_PROVIDER_CALLBACK_SECRET", "")
    given = request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated(f"A provider callback needs the shared secret in {SECRET_HEADER}.")


@blp.route("/<string:name>/callback")
class ProviderCallback(MethodView):
    @blp.doc(security=[{"providerSecret": []}])
    @blp.arguments(ReceiptInput)
    @blp.response(200, ReceiptOutcomeSchema)
    @blp.operation("provider_callback")
    def post(self, data, name: str):
        """A delivery receipt: the message (by the provider's id, or our reference) was
        delivered or failed. A receipt for an unknown message is answered, and ignored."""
        context = current_context()
        session = context.db.session
        statement = select(Message).with_for_update()
        if data["reference"] is not None:
            statement = statement.where(Message.id == data["reference"])
        else:
            statement = statement.where(
                Message.provider == name, Message.provider_message_id == data["message_id"]
            )
        message = session.scalar(statement)
        if message is None:
            return {"matched": False, "status": None}
        apply_receipt(session, context.outbox, message, data["status"], data["reason"], utcnow())
        commit_with_response()
        return {"matched": True, "status": message.status}


@blp.route("/<string:name>/inbound")
class ProviderInbound(MethodView):
    @blp.doc(security=[{"providerSecret": []}])
    @blp.arguments(InboundInput)
    @blp.response(200, ReceiptOutcomeSchema)
    @blp.operation("provider_inbound")
    def post(self, data, name: str):
        """A reply a gateway forwards; STOP (or BERHENTI) opts the number out of SMS."""
        session = current_context().db.session
        if data["text"].strip().upper() not in STOP_WORDS:
            return {"matched": False, "status": None}
        try:
            phone = normalize_phone(data["sender"])
        except InvalidInput:
            raise InvalidInput.field("from", "Not an Indonesian mobile number.") from None
        if session.get(OptOut, phone) is None:
            session.add(OptOut(phone=phone, source=f"keyword:{name}"[:20], created_at=utcnow()))
        commit_with_response()
        return {"matched": True, "status": "opted_out"}
