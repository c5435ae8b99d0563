"""The notification API's request and response schemas."""

from __future__ import annotations

import marshmallow as ma

from shared import shapes
from shared.events.contracts import GRANT_STAGES
from shared.pagination import PageArgs
from shared.shapes import Output
from shared.tokens import ROLES
from shared.validation import Choice, Schema


class ContactSchema(Output):
    member_id = ma.fields.UUID()
    name = ma.fields.String()
    role = shapes.member_role()
    phone = ma.fields.String(allow_none=True, metadata=shapes.PHONE)
    email = ma.fields.String(allow_none=True, metadata={"format": "email"})
    language = shapes.language()


class RecipientGroupSchema(Output):
    id = ma.fields.UUID()
    version = ma.fields.Integer(metadata={"description": "the registry's version of the group"})
    name = ma.fields.String()
    region_code = ma.fields.String(metadata=shapes.VILLAGE_CODE)
    status = shapes.group_status()
    updated_at = ma.fields.AwareDateTime()
    contacts = ma.fields.List(ma.fields.Nested(ContactSchema))


class RecipientGroupQuerySchema(PageArgs):
    pass


# --- Messages --------------------------------------------------------------------------------

CHANNELS = ("sms", "email")
MESSAGE_STATUSES = ("queued", "sending", "sent", "delivered", "failed")
AUDIENCES = ("all_members", "officers", "ketua", "office_mailbox")


def channel(**kwargs) -> Choice:
    return Choice("Channel", CHANNELS, **kwargs)


class MessageSchema(Output):
    id = ma.fields.UUID()
    event_id = ma.fields.UUID()
    event_type = ma.fields.String()
    recipient = ma.fields.String(
        attribute="recipient_masked", metadata={"description": "masked: +62812****7890"}
    )
    recipient_name = ma.fields.String(allow_none=True)
    channel = channel()
    template_id = ma.fields.UUID(allow_none=True)
    template_version = ma.fields.Integer(allow_none=True)
    language = shapes.language()
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String()
    encoding = ma.fields.String(allow_none=True)
    sms_parts = ma.fields.Integer(allow_none=True)
    critical = ma.fields.Boolean()
    status = Choice("MessageStatus", MESSAGE_STATUSES)
    attempts = ma.fields.Integer()
    provider = ma.fields.String(allow_none=True)
    provider_message_id = ma.fields.String(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    group_id = ma.fields.UUID(allow_none=True)
    grant_id = ma.fields.UUID(allow_none=True)
    broadcast_id = ma.fields.UUID(allow_none=True)
    region_code = ma.fields.String()
    send_after = ma.fields.AwareDateTime()
    created_at = ma.fields.AwareDateTime()
    sent_at = ma.fields.AwareDateTime(allow_none=True)
    delivered_at = ma.fields.AwareDateTime(allow_none=True)
    failed_at = ma.fields.AwareDateTime(allow_none=True)


class MessageQuerySchema(PageArgs):
    group_id = ma.fields.UUID()
    grant_id = ma.fields.UUID()
    broadcast_id = ma.fields.UUID()
    status = Choice("MessageStatus", MESSAGE_STATUSES)
    channel = channel()
    since = ma.fields.AwareDateTime(metadata={"description": "made at or after (ISO 8601)"})
    until = ma.fields.AwareDateTime(metadata={"description": "made before (ISO 8601)"})


# --- Rules and templates -----------------------------------------------------------------


class RuleSchema(Schema):
    event_type = Choice(
        "RuleEvent",
        ("grant.stage_changed", "grant.disbursed", "grant.report_due", "grant.deadline_passed"),
        required=True,
    )
    stage = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.OneOf(GRANT_STAGES),
        metadata={"description": "for grant.stage_changed: the stage reached (null: any)"},
    )
    audience = Choice("Audience", AUDIENCES, required=True)
    channel = channel(required=True)
    template_key = ma.fields.String(
        required=True, validate=ma.validate.Regexp(r"^[a-z][a-z0-9_.]{1,99}$")
    )
    critical = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "sent to opted-out numbers and during quiet hours"},
    )
    enabled = ma.fields.Boolean(load_default=True)


class RulesSchema(Schema):
    rules = ma.fields.List(
        ma.fields.Nested(RuleSchema), required=True, validate=ma.validate.Length(max=200)
    )


class TemplateSchema(Output):
    id = ma.fields.UUID()
    key = ma.fields.String()
    channel = channel()
    language = shapes.language()
    version = ma.fields.Integer()
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String()
    updated_at = ma.fields.AwareDateTime()


class TemplateQuerySchema(PageArgs):
    key = ma.fields.String(validate=ma.validate.Length(max=100))
    channel = channel()
    language = shapes.language()


class TemplateInput(Schema):
    subject = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=200)
    )
    body = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=5000))


class PreviewInput(Schema):
    subject = ma.fields.String(
        load_default=None, allow_none=True, validate=ma.validate.Length(max=200)
    )
    body = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(min=1, max=5000),
        metadata={"description": "a draft to try; by default the template's current text"},
    )
    data = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(max=50)),
        load_default=dict,
        metadata={"description": "values to render with, over the sample data"},
    )


class PreviewSchema(Output):
    subject = ma.fields.String(allow_none=True)
    body = ma.fields.String()
    encoding = ma.fields.String(allow_none=True, metadata={"description": "GSM-7 or UCS-2"})
    length = ma.fields.Integer(metadata={"description": "in SMS units (characters)"})
    parts = ma.fields.Integer(allow_none=True)


# --- Broadcasts, opt-outs, mailboxes, provider callbacks -----------------------------------


class BroadcastInput(Schema):
    region_code = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10})$"),
        metadata={"description": "every active group of this region (or give group_ids)"},
    )
    group_ids = ma.fields.List(
        ma.fields.UUID(), load_default=None, validate=ma.validate.Length(min=1, max=5000)
    )
    audience = Choice("BroadcastAudience", ("all_members", "officers"), load_default="all_members")
    text = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=1000))

    @ma.validates_schema
    def _one_target(self, data, **kwargs):
        if (data.get("region_code") is None) == (data.get("group_ids") is None):
            raise ma.ValidationError("Give region_code or group_ids, not both.", "region_code")


class BroadcastSchema(Output):
    id = ma.fields.UUID()
    region_code = ma.fields.String()
    group_ids = ma.fields.List(ma.fields.UUID(), allow_none=True)
    audience = ma.fields.String()
    body = ma.fields.String()
    total = ma.fields.Integer(metadata={"description": "messages made"})
    by_status = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        metadata={"description": "messages per status: the broadcast's progress"},
    )
    reached = ma.fields.Integer(metadata={"description": "sent or delivered"})
    created_by = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class OptOutInput(Schema):
    phone = ma.fields.String(required=True, validate=ma.validate.Length(min=8, max=20))


class OptOutSchema(Output):
    phone = ma.fields.String(attribute="phone_masked")
    source = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class MailboxSchema(Schema):
    region_code = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^$|^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10})$"),
        metadata={"description": 'the region it serves; "" for every region'},
    )
    role = Choice("MailboxRole", ROLES, required=True)
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))


class MailboxesSchema(Schema):
    mailboxes = ma.fields.List(
        ma.fields.Nested(MailboxSchema), required=True, validate=ma.validate.Length(max=500)
    )


class ReceiptInput(Schema):
    message_id = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "the provider's id of the message"},
    )
    reference = ma.fields.UUID(
        load_default=None, metadata={"description": "our reference (the message's id)"}
    )
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(("delivered", "failed")))
    reason = ma.fields.String(load_default=None, validate=ma.validate.Length(max=500))

    @ma.validates_schema
    def _identified(self, data, **kwargs):
        if data.get("message_id") is None and data.get("reference") is None:
            raise ma.ValidationError("Give message_id or reference.", "message_id")


class InboundInput(Schema):
    sender = ma.fields.String(data_key="from", required=True, validate=ma.validate.Length(max=20))
    text = ma.fields.String(required=True, validate=ma.validate.Length(max=1000))


class ReceiptOutcomeSchema(Output):
    matched = ma.fields.Boolean()
    status = ma.fields.String(allow_none=True)


# --- Reports ---------------------------------------------------------------------------------

REPORT_LEVELS = ("province", "regency", "district")
PERCENT = "a percentage 0-100 with one decimal; null when there is nothing to divide by"


class ReportQuerySchema(Schema):
    level = Choice(
        "ReportLevel",
        REPORT_LEVELS,
        load_default="province",
        metadata={"description": "group rows by the first 2, 4 or 6 digits of the region code"},
    )
    region = ma.fields.String(
        validate=ma.validate.Regexp(r"^(\d{2}|\d{4}|\d{6}|\d{10})$", error="Not a region code."),
        metadata={"description": "a region-code prefix inside the caller's region (else 422)"},
    )


class PeriodReportQuerySchema(ReportQuerySchema):
    since = ma.fields.AwareDateTime(metadata={"description": "made at or after (ISO 8601)"})
    until = ma.fields.AwareDateTime(metadata={"description": "made before (ISO 8601)"})

    @ma.validates_schema
    def _period_forward(self, data, **kwargs):
        if data.get("since") and data.get("until") and data["until"] <= data["since"]:
            raise ma.ValidationError("Must be later than since.", "until")


class MessageReportQuerySchema(PeriodReportQuerySchema):
    channel = channel()


class _ReportArea(Output):
    level = Choice("ReportLevel", REPORT_LEVELS)
    region = ma.fields.String(
        metadata={"description": 'the region prefix the answer covers ("" the whole country)'}
    )
    since = ma.fields.AwareDateTime(allow_none=True)
    until = ma.fields.AwareDateTime(allow_none=True)


class MessageFiguresSchema(Output):
    queued = ma.fields.Integer()
    sending = ma.fields.Integer()
    sent = ma.fields.Integer(metadata={"description": "accepted by a provider, no receipt (yet)"})
    delivered = ma.fields.Integer(metadata={"description": "confirmed by a delivery receipt"})
    failed = ma.fields.Integer()
    total = ma.fields.Integer()
    delivery_pct = ma.fields.Float(
        allow_none=True,
        metadata={"description": "(sent + delivered) / (sent + delivered + failed); " + PERCENT},
    )
    confirmed_pct = ma.fields.Float(
        allow_none=True,
        metadata={"description": "delivered / (sent + delivered + failed); " + PERCENT},
    )


class MessageReportRowSchema(MessageFiguresSchema):
    region_code = ma.fields.String(metadata={"description": "the region at the level asked"})
    channel = channel()


class MessageReportSchema(_ReportArea):
    channel = channel(allow_none=True)
    rows = ma.fields.List(ma.fields.Nested(MessageReportRowSchema))
    total = ma.fields.Nested(MessageFiguresSchema)


class ReachFiguresSchema(Output):
    members_messaged = ma.fields.Integer(metadata={"description": "members with a message"})
    members_reached = ma.fields.Integer(
        metadata={"description": "members with at least one message sent or delivered"}
    )
    members_confirmed = ma.fields.Integer(
        metadata={"description": "members with at least one message delivered (a receipt)"}
    )
    reached_pct = ma.fields.Float(
        allow_none=True,
        metadata={"description": "members_reached / members_messaged; " + PERCENT},
    )
    groups_messaged = ma.fields.Integer()
    groups_reached = ma.fields.Integer(
        metadata={"description": "groups with at least one member reached"}
    )


class ReachReportRowSchema(ReachFiguresSchema):
    region_code = ma.fields.String(metadata={"description": "the region at the level asked"})


class ReachReportSchema(_ReportArea):
    rows = ma.fields.List(ma.fields.Nested(ReachReportRowSchema))
    total = ma.fields.Nested(ReachFiguresSchema)


class OptOutFiguresSchema(Output):
    members = ma.fields.Integer(metadata={"description": "members of groups not dissolved"})
    members_with_phone = ma.fields.Integer()
    opted_out = ma.fields.Integer(
        metadata={"description": "members whose phone number is on the opt-out list"}
    )
    opted_out_pct = ma.fields.Float(
        allow_none=True,
        metadata={"description": "opted_out / members_with_phone; " + PERCENT},
    )


class OptOutReportRowSchema(OptOutFiguresSchema):
    region_code = ma.fields.String(metadata={"description": "the region at the level asked"})


class OptOutTotalSchema(OptOutFiguresSchema):
    unattributed = ma.fields.Integer(
        allow_none=True,
        metadata={
            "description": "opted-out numbers no member has; only in an answer covering the "
            "whole country (null otherwise)"
        },
    )


class OptOutReportSchema(Output):
    level = Choice("ReportLevel", REPORT_LEVELS)
    region = ma.fields.String(
        metadata={"description": 'the region prefix the answer covers ("" the whole country)'}
    )
    rows = ma.fields.List(ma.fields.Nested(OptOutReportRowSchema))
    total = ma.fields.Nested(OptOutTotalSchema)
