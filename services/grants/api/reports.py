"""/api/v1/reports: the grant service's figures for a dashboard, each aggregated in the
database and limited to the caller's region (or a narrower `region` inside it)."""

from __future__ import annotations

from flask.views import MethodView

from services.grants import reports
from services.grants.api.common import current_actor
from services.grants.schemas import (
    BudgetReportQuery,
    BudgetReportSchema,
    DecisionReportSchema,
    LevelReportQuery,
    OverdueReportSchema,
    PipelineQuery,
    PipelineReportSchema,
    StageDurationReportSchema,
    UsageReportReportSchema,
)
from shared.api import Blueprint
from shared.db import utcnow
from shared.http import current_context
from shared.tokens import READERS

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    description="Figures of the grant pipeline, deadlines, budgets and usage reports by region.",
)


def report_filter(args: dict) -> reports.ReportFilter:
    """The report's filter: the caller's region, narrowed by `region` (422 outside it)."""
    scope = current_actor().scope
    region = args.get("region")
    if region is not None:
        scope.require(region, field="region")
    return reports.ReportFilter(
        prefix=region if region is not None else scope.prefix,
        level=args.get("level"),
        program_id=args.get("program_id"),
        fiscal_year=args.get("fiscal_year"),
    )


def session():
    return current_context().db.session


@blp.route("/pipeline")
class Pipeline(MethodView):
    @blp.arguments(PipelineQuery, location="query")
    @blp.response(200, PipelineReportSchema)
    @blp.operation("report_grant_pipeline", roles=READERS)
    def get(self, args):
        """Applications and their amounts by stage (in route order), in total, per region at
        `level` and per programme."""
        return reports.pipeline(session(), report_filter(args))


@blp.route("/stage-durations")
class StageDurations(MethodView):
    @blp.arguments(LevelReportQuery, location="query")
    @blp.response(200, StageDurationReportSchema)
    @blp.operation("report_grant_stage_durations", roles=READERS)
    def get(self, args):
        """Working days spent per stage (median and 90th percentile) over completed stays,
        counted on the same calendar as deadlines."""
        return reports.stage_durations(session(), report_filter(args))


@blp.route("/overdue")
class Overdue(MethodView):
    @blp.arguments(LevelReportQuery, location="query")
    @blp.response(200, OverdueReportSchema)
    @blp.operation("report_grants_overdue", roles=READERS)
    def get(self, args):
        """Open applications past their stage's due time, per stage and region (the list
        itself is `GET /grants?overdue=true`)."""
        return reports.overdue(session(), report_filter(args), utcnow())


@blp.route("/budgets")
class Budgets(MethodView):
    @blp.arguments(BudgetReportQuery, location="query")
    @blp.response(200, BudgetReportSchema)
    @blp.operation("report_program_budgets", roles=READERS)
    def get(self, args):
        """Each programme's budget (total, reserved, disbursed, available, absorption) and
        what of it went to the region's applications."""
        return reports.budgets(session(), report_filter(args))


@blp.route("/usage-reports")
class UsageReports(MethodView):
    @blp.arguments(LevelReportQuery, location="query")
    @blp.response(200, UsageReportReportSchema)
    @blp.operation("report_usage_reports", roles=READERS)
    def get(self, args):
        """Disbursed applications by their usage report (LPJ): on time, late, overdue or not
        yet due, and the share on time."""
        return reports.usage_reports(session(), report_filter(args), utcnow())


@blp.route("/decisions")
class Decisions(MethodView):
    @blp.arguments(LevelReportQuery, location="query")
    @blp.response(200, DecisionReportSchema)
    @blp.operation("report_grant_decisions", roles=READERS)
    def get(self, args):
        """Approval, rejection and return rates, from the steps in the applications' history."""
        return reports.decisions(session(), report_filter(args))
