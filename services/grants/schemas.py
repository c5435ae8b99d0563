"""The grant API's request and response schemas."""

from __future__ import annotations

import marshmallow as ma

from services.grants.inputs import ACTION_DATA, AMOUNT_RULES, FUNDING_SOURCES, PROGRAM_STATUSES
from services.grants.reports import LEVEL_DIGITS
from shared import shapes
from shared.events.contracts import GRANT_STAGES
from shared.pagination import PageArgs
from shared.problems import ProblemSchema
from shared.shapes import OfficersSchema, Output
from shared.validation import Choice, Schema


def officers_of(kept: dict) -> dict:
    """The officers as kept; one kept as a bare member id (before names were kept) has no name."""
    return {
        role: officer if isinstance(officer, dict) else {"member_id": officer, "name": None}
        for role, officer in kept.items()
    }


class KeptOfficers(ma.fields.Nested):
    """A group's officers as this service keeps them, in the registry's shape."""

    def __init__(self, **kwargs):
        super().__init__(OfficersSchema, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return super()._serialize(officers_of(value or {}), attr, obj, **kwargs)


class GroupProjectionSchema(Output):
    id = ma.fields.UUID()
    version = ma.fields.Integer(metadata={"description": "the registry's version of the group"})
    name = ma.fields.String()
    region_code = ma.fields.String(metadata=shapes.VILLAGE_CODE)
    status = shapes.group_status()
    business_type = ma.fields.String(allow_none=True)
    member_count = ma.fields.Integer()
    officers = KeptOfficers()
    updated_at = ma.fields.AwareDateTime()


class GroupQuerySchema(PageArgs):
    status = shapes.group_status()


# --- Programmes --------------------------------------------------------------------------

RUPIAH = {"description": "whole rupiah"}


class ProgramSchema(Output):
    id = ma.fields.UUID()
    name = ma.fields.String()
    fiscal_year = ma.fields.Integer()
    funding_source = Choice("FundingSource", FUNDING_SOURCES)
    region_code = ma.fields.String(allow_none=True, metadata={"description": "null: national"})
    total_budget = ma.fields.Integer(metadata=RUPIAH)
    amount_rule = Choice("AmountRule", AMOUNT_RULES)
    amount = ma.fields.Integer(metadata=RUPIAH)
    min_members = ma.fields.Integer()
    max_members = ma.fields.Integer()
    workflow = ma.fields.String(attribute="workflow_key")
    report_due_days = ma.fields.Integer()
    status = Choice("ProgramStatus", PROGRAM_STATUSES)
    version = ma.fields.Integer()
    created_by = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class ProgramQuerySchema(PageArgs):
    fiscal_year = ma.fields.Integer(validate=ma.validate.Range(min=2000, max=2100))
    funding_source = Choice("FundingSource", FUNDING_SOURCES)
    status = Choice("ProgramStatus", PROGRAM_STATUSES)


class BudgetSchema(Output):
    program_id = ma.fields.UUID()
    total = ma.fields.Integer(metadata=RUPIAH)
    reserved = ma.fields.Integer(metadata={"description": "approved, not yet paid (rupiah)"})
    disbursed = ma.fields.Integer(metadata={"description": "paid to groups (rupiah)"})
    available = ma.fields.Integer(metadata={"description": "total - reserved - disbursed"})


# --- Applications ------------------------------------------------------------------------


class RequestedItemSchema(Output):
    name = ma.fields.String()
    quantity = ma.fields.Integer()
    unit_price = ma.fields.Integer(metadata=RUPIAH)


class WorkflowRefSchema(Output):
    key = ma.fields.String()
    version = ma.fields.Integer()


class GrantSchema(Output):
    id = ma.fields.UUID()
    program_id = ma.fields.UUID()
    group_id = ma.fields.UUID()
    group_name = ma.fields.String()
    region_code = ma.fields.String(metadata=shapes.VILLAGE_CODE)
    amount = ma.fields.Integer(metadata=RUPIAH)
    business_plan = ma.fields.String()
    requested_items = ma.fields.List(ma.fields.Nested(RequestedItemSchema))
    documents = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Boolean())
    stage = Choice("GrantStage", GRANT_STAGES)
    workflow = ma.fields.Nested(WorkflowRefSchema)
    next_actions = ma.fields.List(
        ma.fields.String(), metadata={"description": "the actions possible from this stage"}
    )
    version = ma.fields.Integer()
    stage_entered_at = ma.fields.AwareDateTime()
    due_at = ma.fields.AwareDateTime(allow_none=True)
    overdue = ma.fields.Boolean()
    created_by = ma.fields.String()
    submitted_by = ma.fields.String(allow_none=True)
    verified_by = ma.fields.String(allow_none=True)
    approved_by = ma.fields.String(allow_none=True)
    decree_id = ma.fields.UUID(allow_none=True)
    decree_number = ma.fields.String(allow_none=True)
    transfer_reference = ma.fields.String(allow_none=True)
    transfer_date = ma.fields.Date(allow_none=True)
    disbursed_amount = ma.fields.Integer(allow_none=True, metadata=RUPIAH)
    last_comment = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class GrantQuerySchema(PageArgs):
    stage = Choice("GrantStage", GRANT_STAGES)
    program_id = ma.fields.UUID()
    group_id = ma.fields.UUID()
    region = ma.fields.String(
        validate=ma.validate.Regexp(r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10})$"),
        metadata={"description": "a region code prefix (province, regency, district, village)"},
    )
    overdue = ma.fields.Boolean(
        metadata={"description": "only those past (true) or within (false) their stage's due time"}
    )


class TransitionInput(Schema):
    action = Choice("GrantAction", sorted(ACTION_DATA), required=True)
    comment = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(max=5000),
        metadata={"description": "required to return or reject (the reason)"},
    )
    data = ma.fields.Dict(
        load_default=dict,
        metadata={
            "description": "what the action needs: verify {checklist}, recommend "
            "{letter_number}, approve {decree_number, decree_date}, disburse "
            "{transfer_reference, transfer_date, amount}, report {spent_amount, report_date, "
            "receipts}, monitor {business_status, visit_date, findings}"
        },
    )


class AuditRecordSchema(Output):
    seq = ma.fields.Integer()
    actor = ma.fields.String()
    role = ma.fields.String()
    action = ma.fields.String()
    from_stage = ma.fields.String(allow_none=True)
    to_stage = ma.fields.String()
    comment = ma.fields.String(allow_none=True)
    data = ma.fields.Dict()
    at = ma.fields.AwareDateTime()
    request_id = ma.fields.String(allow_none=True)
    workflow_key = ma.fields.String()
    workflow_version = ma.fields.Integer()
    prev_hash = ma.fields.String()
    hash = ma.fields.String()


# --- Bulk outcomes, decrees and batches ----------------------------------------------------


class ItemOutcomeSchema(Output):
    grant_id = ma.fields.UUID(allow_none=True)
    ok = ma.fields.Boolean()
    stage = ma.fields.String(allow_none=True)
    problem = ma.fields.Nested(ProblemSchema, allow_none=True)


class DecreeInput(Schema):
    number = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    decree_date = ma.fields.Date(required=True)
    signer = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=200))
    grant_ids = ma.fields.List(
        ma.fields.UUID(), required=True, validate=ma.validate.Length(min=1, max=20_000)
    )
    atomic = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "approve all or none: any failure is a 409, nothing changed"},
    )


class DecreeSchema(Output):
    id = ma.fields.UUID()
    number = ma.fields.String()
    decree_date = ma.fields.Date()
    signer = ma.fields.String()
    region_code = ma.fields.String()
    approved_count = ma.fields.Integer()
    failed_count = ma.fields.Integer()
    created_by = ma.fields.String()
    created_at = ma.fields.AwareDateTime()


class DecreeOutcomeSchema(Output):
    decree = ma.fields.Nested(DecreeSchema)
    items = ma.fields.List(ma.fields.Nested(ItemOutcomeSchema))


class BatchInput(Schema):
    program_id = ma.fields.UUID(required=True)
    grant_ids = ma.fields.List(
        ma.fields.UUID(),
        load_default=None,
        validate=ma.validate.Length(min=1, max=20_000),
        metadata={
            "description": "the approved applications to pay; by default every one "
            "of the programme waiting for payment"
        },
    )


class BatchSchema(Output):
    id = ma.fields.UUID()
    program_id = ma.fields.UUID()
    status = Choice("BatchStatus", ("open", "settled"))
    created_by = ma.fields.String()
    created_at = ma.fields.AwareDateTime()
    settled_at = ma.fields.AwareDateTime(allow_none=True)
    items = ma.fields.Integer(metadata={"description": "transfers in the batch"})
    pending = ma.fields.Integer()
    disbursed = ma.fields.Integer()
    failed = ma.fields.Integer()
    total_amount = ma.fields.Integer(metadata=RUPIAH)


class BatchOutcomeSchema(Output):
    batch = ma.fields.Nested(BatchSchema)
    items = ma.fields.List(ma.fields.Nested(ItemOutcomeSchema))


class ResultRowOutcomeSchema(Output):
    row = ma.fields.Integer()
    reference = ma.fields.String()
    grant_id = ma.fields.UUID(allow_none=True)
    ok = ma.fields.Boolean()
    status = ma.fields.String(allow_none=True)
    unchanged = ma.fields.Boolean(allow_none=True)
    problem = ma.fields.Nested(ProblemSchema, allow_none=True)


class ResultOutcomeSchema(Output):
    batch = ma.fields.Nested(BatchSchema)
    rows = ma.fields.List(ma.fields.Nested(ResultRowOutcomeSchema))


# --- Workflows and the calendar ------------------------------------------------------------


class WorkflowSchema(Output):
    key = ma.fields.String()
    version = ma.fields.Integer()
    title = ma.fields.String()
    latest = ma.fields.Boolean()
    table = ma.fields.String(metadata={"description": "the route as a Markdown table"})
    definition = ma.fields.Dict()


class LeaveDayInput(Schema):
    day = ma.fields.Date(required=True)
    description = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=200))


class LeaveDaysInput(Schema):
    days = ma.fields.List(
        ma.fields.Nested(LeaveDayInput), required=True, validate=ma.validate.Length(max=60)
    )


class CalendarDaySchema(Output):
    day = ma.fields.Date()
    description = ma.fields.String()
    kind = Choice("DayOffKind", ("public_holiday", "collective_leave"))


class CalendarSchema(Output):
    year = ma.fields.Integer()
    days_off = ma.fields.List(ma.fields.Nested(CalendarDaySchema))
    working_days = ma.fields.Integer()


# Reports. Percentages are numbers from 0 to 100 with one decimal, null where the base is 0.

PERCENT = {"description": "a percentage, 0 to 100 with one decimal; null when its base is 0"}
REGION_LEVELS = tuple(LEVEL_DIGITS)
REGION_PREFIX = r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{10})$"


class RegionReportQuery(Schema):
    region = ma.fields.String(
        validate=ma.validate.Regexp(REGION_PREFIX),
        metadata={
            "description": "narrow to this region code prefix (province, regency, district, "
            "village) inside the caller's region; default: the caller's region"
        },
    )


class LevelReportQuery(RegionReportQuery):
    level = Choice(
        "RegionLevel",
        REGION_LEVELS,
        metadata={
            "description": "also answer per region at this level (the code's first 2, 4 or 6 "
            "digits); without it `regions` is empty"
        },
    )
    program_id = ma.fields.UUID(metadata={"description": "only this programme's applications"})


class PipelineQuery(LevelReportQuery):
    fiscal_year = ma.fields.Integer(
        validate=ma.validate.Range(min=2000, max=2100),
        metadata={"description": "only applications to programmes of this fiscal year"},
    )


class BudgetReportQuery(RegionReportQuery):
    fiscal_year = ma.fields.Integer(
        validate=ma.validate.Range(min=2000, max=2100),
        metadata={"description": "only programmes of this fiscal year"},
    )


class ReportEcho(Output):
    """What the figures were counted over."""

    region = ma.fields.String(metadata={"description": 'the region prefix counted ("" nationwide)'})
    level = Choice(
        "RegionLevel", REGION_LEVELS, allow_none=True, metadata={"description": "of `regions`"}
    )
    program_id = ma.fields.UUID(allow_none=True)
    fiscal_year = ma.fields.Integer(allow_none=True)


class StageFiguresSchema(Output):
    stage = Choice("GrantStage", GRANT_STAGES)
    count = ma.fields.Integer(metadata={"description": "applications now at this stage"})
    amount = ma.fields.Integer(metadata={"description": "their amounts, whole rupiah"})


class PipelineTotalSchema(Output):
    count = ma.fields.Integer()
    amount = ma.fields.Integer(metadata=RUPIAH)


class PipelineRegionSchema(Output):
    region_code = ma.fields.String()
    total = ma.fields.Nested(PipelineTotalSchema)
    stages = ma.fields.List(ma.fields.Nested(StageFiguresSchema))


class PipelineProgramSchema(Output):
    program_id = ma.fields.UUID()
    name = ma.fields.String()
    fiscal_year = ma.fields.Integer()
    funding_source = Choice("FundingSource", FUNDING_SOURCES)
    total = ma.fields.Nested(PipelineTotalSchema)
    stages = ma.fields.List(ma.fields.Nested(StageFiguresSchema))


class PipelineReportSchema(ReportEcho):
    total = ma.fields.Nested(PipelineTotalSchema)
    stages = ma.fields.List(
        ma.fields.Nested(StageFiguresSchema),
        metadata={"description": "every stage, in route order (both routes), zeros included"},
    )
    regions = ma.fields.List(ma.fields.Nested(PipelineRegionSchema))
    programs = ma.fields.List(ma.fields.Nested(PipelineProgramSchema))


class StageDurationSchema(Output):
    stage = Choice("GrantStage", GRANT_STAGES)
    stays = ma.fields.Integer(metadata={"description": "completed stays in the stage"})
    median_working_days = ma.fields.Float(
        allow_none=True, metadata={"description": "null when no stay is completed"}
    )
    p90_working_days = ma.fields.Float(allow_none=True)


class StageDurationRegionSchema(Output):
    region_code = ma.fields.String()
    stages = ma.fields.List(ma.fields.Nested(StageDurationSchema))


class StageDurationReportSchema(ReportEcho):
    stages = ma.fields.List(ma.fields.Nested(StageDurationSchema))
    regions = ma.fields.List(ma.fields.Nested(StageDurationRegionSchema))


class OverdueStageSchema(Output):
    stage = Choice("GrantStage", GRANT_STAGES)
    overdue = ma.fields.Integer(metadata={"description": "past their due time"})
    with_deadline = ma.fields.Integer(metadata={"description": "with a due time running"})


class OverdueTotalSchema(Output):
    overdue = ma.fields.Integer()
    with_deadline = ma.fields.Integer()
    overdue_pct = ma.fields.Float(allow_none=True, metadata=PERCENT)


class OverdueRegionSchema(Output):
    region_code = ma.fields.String()
    total = ma.fields.Nested(OverdueTotalSchema)
    stages = ma.fields.List(ma.fields.Nested(OverdueStageSchema))


class OverdueReportSchema(ReportEcho):
    as_of = ma.fields.AwareDateTime()
    total = ma.fields.Nested(OverdueTotalSchema)
    stages = ma.fields.List(ma.fields.Nested(OverdueStageSchema))
    regions = ma.fields.List(ma.fields.Nested(OverdueRegionSchema))


class BudgetFiguresSchema(Output):
    total_budget = ma.fields.Integer(metadata=RUPIAH)
    reserved = ma.fields.Integer(metadata={"description": "approved, not yet paid (rupiah)"})
    disbursed = ma.fields.Integer(metadata={"description": "paid to groups (rupiah)"})
    available = ma.fields.Integer(metadata={"description": "total - reserved - disbursed"})
    absorption_pct = ma.fields.Float(
        allow_none=True,
        metadata={"description": "disbursed / total_budget, " + PERCENT["description"]},
    )
    region_reserved = ma.fields.Integer(
        metadata={"description": "of `reserved`, for applications in the region counted"}
    )
    region_disbursed = ma.fields.Integer(
        metadata={"description": "of `disbursed`, paid to groups in the region counted"}
    )
    region_absorption_pct = ma.fields.Float(
        allow_none=True,
        metadata={"description": "region_disbursed / total_budget, " + PERCENT["description"]},
    )


class BudgetProgramSchema(BudgetFiguresSchema):
    program_id = ma.fields.UUID()
    name = ma.fields.String()
    fiscal_year = ma.fields.Integer()
    funding_source = Choice("FundingSource", FUNDING_SOURCES)
    program_region_code = ma.fields.String(
        allow_none=True, metadata={"description": "null: national"}
    )


class BudgetReportSchema(Output):
    region = ma.fields.String(metadata={"description": 'the region prefix counted ("" nationwide)'})
    fiscal_year = ma.fields.Integer(allow_none=True)
    total = ma.fields.Nested(BudgetFiguresSchema)
    programs = ma.fields.List(ma.fields.Nested(BudgetProgramSchema))


class UsageReportFiguresSchema(Output):
    disbursed = ma.fields.Integer(metadata={"description": "applications paid"})
    reported_on_time = ma.fields.Integer()
    reported_late = ma.fields.Integer()
    overdue = ma.fields.Integer(metadata={"description": "not reported, past due"})
    not_yet_due = ma.fields.Integer(metadata={"description": "not reported, not yet due"})
    on_time_pct = ma.fields.Float(
        allow_none=True,
        metadata={
            "description": "reported_on_time / (reported_on_time + reported_late + overdue), "
            + PERCENT["description"]
        },
    )


class UsageReportRegionSchema(UsageReportFiguresSchema):
    region_code = ma.fields.String()


class UsageReportReportSchema(ReportEcho):
    as_of = ma.fields.AwareDateTime()
    total = ma.fields.Nested(UsageReportFiguresSchema)
    regions = ma.fields.List(ma.fields.Nested(UsageReportRegionSchema))


class DecisionFiguresSchema(Output):
    submissions = ma.fields.Integer(metadata={"description": "`submit` steps"})
    returns = ma.fields.Integer(metadata={"description": "`return` steps (back to draft)"})
    verifications = ma.fields.Integer(metadata={"description": "`verify` steps"})
    recommendations = ma.fields.Integer(metadata={"description": "`recommend` steps"})
    decided = ma.fields.Integer(metadata={"description": "applications approved or rejected"})
    approved = ma.fields.Integer(metadata={"description": "applications ever approved"})
    rejected = ma.fields.Integer(metadata={"description": "applications ever rejected"})
    reports = ma.fields.Integer(metadata={"description": "`report` steps (usage reports in)"})
    report_returns = ma.fields.Integer(metadata={"description": "`return_report` steps"})
    approval_pct = ma.fields.Float(allow_none=True, metadata={"description": "approved / decided"})
    rejection_pct = ma.fields.Float(allow_none=True, metadata={"description": "rejected / decided"})
    return_pct = ma.fields.Float(allow_none=True, metadata={"description": "returns / submissions"})
    report_return_pct = ma.fields.Float(
        allow_none=True, metadata={"description": "report_returns / reports"}
    )


class DecisionRegionSchema(DecisionFiguresSchema):
    region_code = ma.fields.String()


class DecisionReportSchema(ReportEcho):
    total = ma.fields.Nested(DecisionFiguresSchema)
    regions = ma.fields.List(ma.fields.Nested(DecisionRegionSchema))
