"""/api/v1/broadcasts, /api/v1/opt-outs and /api/v1/mailboxes: reaching many groups, numbers
that asked for no more SMS, and where each office role reads its email."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from sqlalchemy import delete, or_, select

from services.notifications.broadcasts import create_broadcast, find_broadcast, progress
from services.notifications.delivery import mask, quiet_hours_on
from services.notifications.models import Contact, OfficeMailbox, OptOut, RecipientGroup
from services.notifications.schemas import (
    BroadcastInput,
    BroadcastSchema,
    MailboxesSchema,
    OptOutInput,
    OptOutSchema,
)
from services.notifications.tasks import send_deliveries
from shared.api import Blueprint
from shared.auth import current_principal
from shared.db import utcnow
from shared.errors import InvalidInput, NotFound
from shared.http import commit_with_response, current_context
from shared.pagination import PageArgs, page_of, paginate
from shared.phones import NotAMobileNumber, indonesian_mobile
from shared.tokens import READERS

broadcasts_blp = Blueprint(
    "broadcasts",
    __name__,
    url_prefix="/api/v1/broadcasts",
    description="One SMS to every member of a region's groups, or of a list of groups.",
)
opt_outs_blp = Blueprint(
    "opt_outs",
    __name__,
    url_prefix="/api/v1/opt-outs",
    description="Numbers that asked for no more SMS (critical ones still go).",
)
mailboxes_blp = Blueprint(
    "mailboxes",
    __name__,
    url_prefix="/api/v1/mailboxes",
    description="Each office role's mailbox per region, for emails such as missed deadlines.",
)

BROADCASTERS = ("verifikator", "kepala_dinas", "admin")
OPT_OUT_KEEPERS = ("admin", "service")


def normalize_phone(value: str) -> str:
    """An Indonesian mobile number (08…, 628…, +628…) as E.164; 422 otherwise."""
    try:
        return indonesian_mobile(value)
    except NotAMobileNumber:
        raise InvalidInput.field(
            "phone", "Must be an Indonesian mobile number such as 0812…."
        ) from None


@broadcasts_blp.route("")
class Broadcasts(MethodView):
    @broadcasts_blp.arguments(BroadcastInput)
    @broadcasts_blp.response(201, BroadcastSchema)
    @broadcasts_blp.operation("create_broadcast", roles=BROADCASTERS)
    def post(self, data):
        """Send one text to every member (or only the officers) of the region's active groups,
        or of the listed groups; follow its progress at GET /broadcasts/{id}."""
        context = current_context()
        principal = current_principal()
        broadcast, made = create_broadcast(
            context.db.session,
            data,
            scope=principal.scope,
            actor=principal.sub,
            now=utcnow(),
            quiet=quiet_hours_on(),
        )
        commit_with_response(
            then=lambda: send_deliveries(context.celery, context.settings.queue, made)
        )
        return progress(context.db.session, broadcast), 201


@broadcasts_blp.route("/<uuid:broadcast_id>")
class BroadcastById(MethodView):
    @broadcasts_blp.response(200, BroadcastSchema)
    @broadcasts_blp.operation("get_broadcast", roles=READERS)
    def get(self, broadcast_id: uuid.UUID):
        """A broadcast's progress: its messages by status and how many were reached."""
        session = current_context().db.session
        return progress(session, find_broadcast(session, broadcast_id, current_principal().scope))


def opt_out_view(opt_out: OptOut) -> OptOut:
    opt_out.phone_masked = mask(opt_out.phone)
    return opt_out


@opt_outs_blp.route("")
class OptOuts(MethodView):
    @opt_outs_blp.arguments(PageArgs, location="query")
    @opt_outs_blp.response(200, page_of(OptOutSchema))
    @opt_outs_blp.operation("list_opt_outs", roles=("admin", "auditor"))
    def get(self, args):
        """The numbers that opted out, masked, newest first: for a regional caller, those of
        members of groups in its region (a number belongs to no region by itself)."""
        scope = current_principal().scope
        statement = select(OptOut).order_by(OptOut.created_at.desc(), OptOut.phone)
        if not scope.nationwide:
            statement = statement.where(OptOut.phone.in_(_members_numbers(scope)))
        page = paginate(current_context().db.session, statement, args["page"], args["page_size"])
        return {**page, "items": [opt_out_view(o) for o in page["items"]]}

    @opt_outs_blp.arguments(OptOutInput)
    @opt_outs_blp.response(201, OptOutSchema)
    @opt_outs_blp.operation("add_opt_out", roles=OPT_OUT_KEEPERS)
    def post(self, data):
        """Stop SMS to a number (except critical ones, such as a disbursement)."""
        session = current_context().db.session
        phone = normalize_phone(data["phone"])
        opt_out = session.get(OptOut, phone) or OptOut(
            phone=phone, source="api", created_by=current_principal().sub, created_at=utcnow()
        )
        session.add(opt_out)
        commit_with_response()
        return opt_out_view(opt_out), 201


@opt_outs_blp.route("/<string:phone>")
class OptOutByPhone(MethodView):
    @opt_outs_blp.response(204)
    @opt_outs_blp.operation("remove_opt_out", roles=OPT_OUT_KEEPERS)
    def delete(self, phone: str):
        """Let SMS reach a number again. A regional caller may do so only for a number of a
        member of a group in its region (404 otherwise): the one who asked for no more SMS
        may live anywhere."""
        session = current_context().db.session
        number, scope = normalize_phone(phone), current_principal().scope
        if not scope.nationwide and (
            session.scalar(_members_numbers(scope).where(Contact.phone == number).limit(1)) is None
        ):
            raise NotFound("No member of a group in your region has this number.")
        session.execute(delete(OptOut).where(OptOut.phone == number))
        commit_with_response()


def _members_numbers(scope):
    """The phone numbers of the members of groups in `scope` (a number belongs to no region
    by itself)."""
    return (
        select(Contact.phone)
        .join(RecipientGroup, RecipientGroup.id == Contact.group_id)
        .where(scope.where(RecipientGroup.region_code))
    )


@mailboxes_blp.route("")
class Mailboxes(MethodView):
    @mailboxes_blp.response(200, MailboxesSchema)
    @mailboxes_blp.operation("list_mailboxes", roles=READERS)
    def get(self):
        """The office mailboxes that serve the caller's region (inside it, or around it such as
        the province's and `""`), by region and role; another region's are not shown."""
        scope = current_principal().scope
        around = [scope.prefix[:n] for n in (0, 2, 4, 6, 10) if n <= len(scope.prefix)]
        serves = or_(scope.where(OfficeMailbox.region_code), OfficeMailbox.region_code.in_(around))
        rows = current_context().db.session.scalars(
            select(OfficeMailbox)
            .where(serves)
            .order_by(OfficeMailbox.region_code, OfficeMailbox.role)
        )
        return {"mailboxes": list(rows)}

    @mailboxes_blp.arguments(MailboxesSchema)
    @mailboxes_blp.response(200, MailboxesSchema)
    @mailboxes_blp.operation("replace_mailboxes", roles=("admin",))
    def put(self, data):
        """Replace the mailboxes of the caller's region (one per region and role); a regional
        admin neither sees nor changes another region's."""
        session = current_context().db.session
        scope = current_principal().scope
        for index, mailbox in enumerate(data["mailboxes"]):
            scope.require(mailbox["region_code"], field=f"mailboxes.{index}.region_code")
        keys = [(m["region_code"], m["role"]) for m in data["mailboxes"]]
        twice = [i for i, key in enumerate(keys) if key in keys[:i]]
        if twice:
            raise InvalidInput(
                "A region and role has one mailbox.",
                errors=[{"field": f"mailboxes.{i}", "message": "a second mailbox"} for i in twice],
            )
        session.execute(delete(OfficeMailbox).where(scope.where(OfficeMailbox.region_code)))
        session.add_all(OfficeMailbox(**m, updated_at=utcnow()) for m in data["mailboxes"])
        commit_with_response()
        return data
