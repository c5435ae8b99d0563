"""What the grant service accepts: programmes, applications and the data each workflow action
needs. Domain code and the API both use these; they know nothing of Flask."""

from __future__ import annotations

import marshmallow as ma

from shared.errors import InvalidInput
from shared.validation import Choice, Schema, flatten_messages

FUNDING_SOURCES = ("apbn", "apbd_province", "apbd_regency")
AMOUNT_RULES = ("per_member", "per_group")
PROGRAM_STATUSES = ("open", "closed")
# The approval route each funding source takes unless the programme names another.
DEFAULT_WORKFLOW = {"apbn": "national", "apbd_province": "regional", "apbd_regency": "regional"}
# Rp 2,000,000 per member family: the common rule (Permensos 2/2019 practice).
DEFAULT_AMOUNT_PER_MEMBER = 2_000_000
MAX_RUPIAH = 10**15
BUSINESS_STATUSES = ("running", "growing", "stalled", "stopped")

RUPIAH = {"description": "whole rupiah", "example": 20_000_000}
REGION_PREFIX = {"pattern": r"^([0-9]{2}|[0-9]{4})$", "example": "64"}


def rupiah(**kwargs) -> ma.fields.Integer:
    """An amount of money in whole rupiah (never a float)."""
    minimum = kwargs.pop("minimum", 1)
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=minimum, max=MAX_RUPIAH),
        metadata={**RUPIAH, **kwargs.pop("metadata", {})},
        **kwargs,
    )


def text(max_length: int, **kwargs) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.Length(min=1, max=max_length), **kwargs)


class ProgramInput(Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=3, max=200))
    fiscal_year = ma.fields.Integer(
        strict=True, required=True, validate=ma.validate.Range(min=2000, max=2100)
    )
    funding_source = Choice("FundingSource", FUNDING_SOURCES, required=True)
    region_code = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Regexp(r"^([0-9]{2}|[0-9]{4})$", error="Must be 2 or 4 digits."),
        metadata={
            "description": "the province (2 digits) or regency (4) the programme serves; "
            "null for a national (APBN) programme",
            **REGION_PREFIX,
        },
    )
    total_budget = rupiah(required=True, minimum=0)
    amount_rule = Choice("AmountRule", AMOUNT_RULES, load_default="per_member")
    amount = rupiah(
        load_default=DEFAULT_AMOUNT_PER_MEMBER,
        metadata={"description": "per member family, or per group (by amount_rule)"},
    )
    min_members = ma.fields.Integer(
        strict=True, load_default=5, validate=ma.validate.Range(min=1, max=100)
    )
    max_members = ma.fields.Integer(
        strict=True, load_default=20, validate=ma.validate.Range(min=1, max=100)
    )
    workflow = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$"),
        metadata={
            "description": "the approval route; by default `national` for APBN, `regional` for APBD"
        },
    )
    report_due_days = ma.fields.Integer(
        strict=True,
        load_default=90,
        validate=ma.validate.Range(min=1, max=730),
        metadata={"description": "days after disbursement the usage report (LPJ) is due"},
    )
    status = Choice("ProgramStatus", PROGRAM_STATUSES, load_default="open")

    @ma.validates_schema
    def _consistent(self, data, **kwargs):
        errors = {}
        if data.get("min_members", 0) > data.get("max_members", 100):
            errors["min_members"] = ["Must not be more than max_members."]
        source, region = data.get("funding_source"), data.get("region_code")
        expected = {"apbn": None, "apbd_province": 2, "apbd_regency": 4}.get(source, -1)
        if source and expected != -1 and "region_code" in data:
            if expected is None and region is not None:
                errors["region_code"] = ["A national (APBN) programme has no region: send null."]
            elif expected is not None and (region is None or len(region) != expected):
                what = "province (2 digits)" if expected == 2 else "regency (4 digits)"
                errors["region_code"] = [f"A {source} programme serves one {what}."]
        if errors:
            raise ma.ValidationError(errors)


class ProgramChanges(Schema):
    """What may change on a programme once applications use it."""

    name = ma.fields.String(validate=ma.validate.Length(min=3, max=200))
    total_budget = rupiah(minimum=0)
    status = Choice("ProgramStatus", PROGRAM_STATUSES)
    report_due_days = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=730))


class RequestedItemInput(Schema):
    name = text(200, required=True)
    quantity = ma.fields.Integer(strict=True, required=True, validate=ma.validate.Range(min=1))
    unit_price = rupiah(required=True, minimum=0)


class GrantInput(Schema):
    program_id = ma.fields.UUID(required=True)
    group_id = ma.fields.UUID(required=True)
    amount = rupiah(
        load_default=None,
        allow_none=True,
        metadata={"description": "by default, the most the programme's rule allows the group"},
    )
    business_plan = text(20_000, required=True)
    requested_items = ma.fields.List(
        ma.fields.Nested(RequestedItemInput),
        load_default=list,
        validate=ma.validate.Length(max=200),
    )
    documents = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=40)),
        values=ma.fields.Boolean(truthy={True}, falsy={False}),
        load_default=dict,
        metadata={"description": "the document checklist: which documents the group handed in"},
    )


class GrantChanges(Schema):
    """A draft's details (a new draft, or one returned for correction)."""

    amount = rupiah()
    business_plan = text(20_000)
    requested_items = ma.fields.List(
        ma.fields.Nested(RequestedItemInput), validate=ma.validate.Length(max=200)
    )
    documents = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=40)),
        values=ma.fields.Boolean(truthy={True}, falsy={False}),
    )


# --- The data each action needs -------------------------------------------------------------


class NoData(Schema):
    pass


class VerifyData(Schema):
    checklist = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.Length(min=1, max=40)),
        values=ma.fields.Boolean(truthy={True}, falsy={False}),
        required=True,
        metadata={"description": "each required document: checked and in order (true) or not"},
    )
    minutes_number = text(100, load_default=None, metadata={"description": "berita acara"})


class RecommendData(Schema):
    letter_number = text(100, required=True, metadata={"description": "the province's letter"})


class ApproveData(Schema):
    decree_number = text(100, required=True, metadata={"description": "SK penetapan"})
    decree_date = ma.fields.Date(load_default=None)


class DisburseData(Schema):
    transfer_reference = text(100, required=True)
    transfer_date = ma.fields.Date(required=True)
    amount = rupiah(required=True)


class ReportData(Schema):
    spent_amount = rupiah(required=True, minimum=0)
    report_date = ma.fields.Date(load_default=None)
    receipts = ma.fields.Integer(
        strict=True, load_default=None, validate=ma.validate.Range(min=0, max=100_000)
    )


class MonitorData(Schema):
    business_status = Choice("BusinessStatus", BUSINESS_STATUSES, required=True)
    visit_date = ma.fields.Date(load_default=None)
    findings = text(5_000, load_default=None)


ACTION_DATA: dict[str, type[Schema]] = {
    "submit": NoData,
    "cancel": NoData,
    "verify": VerifyData,
    "return": NoData,
    "reject": NoData,
    "recommend": RecommendData,
    "approve": ApproveData,
    "disburse": DisburseData,
    "report": ReportData,
    "return_report": NoData,
    "accept_report": NoData,
    "monitor": MonitorData,
    "close": NoData,
}


def action_data(action: str, data: dict | None, *, comment: str | None, comment_required: bool):
    """The action's data, checked: 422 naming every missing or bad field (`data.<field>`)."""
    problems: list[dict] = []
    loaded: dict = {}
    try:
        loaded = ACTION_DATA[action]().load(data or {})
    except ma.ValidationError as exc:
        problems = flatten_messages(exc.messages, "data")
    if comment_required and not (comment or "").strip():
        problems.append({"field": "comment", "message": f"The action {action} needs a reason."})
    if problems:
        raise InvalidInput(f"The data for {action} is incomplete or wrong.", errors=problems)
    return loaded
