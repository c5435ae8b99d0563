"""/api/v1/reports: the registry's figures for the province dashboard, per region (levels
province, regency, district) and in total, limited to the caller's region like every read.
Definitions of each figure: docs/registry.md, "Reports"."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from services.registry.reports import (
    LEVEL_DIGITS,
    VISIT_WINDOW_DAYS,
    business_types,
    groups_by_region,
    report_prefix,
    revenue_by_region,
    visits_by_region,
)
from shared.api import Blueprint
from shared.auth import current_principal
from shared.db import utcnow
from shared.events.contracts import GROUP_STATUSES
from shared.http import current_context
from shared.shapes import Output
from shared.timezones import zone_of
from shared.tokens import READERS
from shared.validation import Choice, Schema

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    description="Figures for dashboards: groups, members, business types, mentoring, revenue.",
)

REGION_PATTERN = r"^(\d{2}|\d{4}|\d{6}|\d{10})$"
REGION_CODE_AT_LEVEL = r"^([0-9]{2}|[0-9]{4}|[0-9]{6})$"
PERCENT = {"description": "0 to 100, one decimal; null when there is nothing to divide by"}


def _region_field() -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.Regexp(REGION_PATTERN, error="Not a region code."),
        metadata={
            "description": "a region-code prefix inside your region (province, regency, "
            "district or village); omit it for your whole region"
        },
    )


class RegionReportQuery(Schema):
    level = Choice(
        "ReportLevel",
        tuple(LEVEL_DIGITS),
        load_default="province",
        metadata={"description": "the region level each row stands for"},
    )
    region = _region_field()


class BusinessTypeQuery(Schema):
    region = _region_field()


class RegionColumns(Output):
    region_code = ma.fields.String(
        metadata={
            "description": "the region of the row, at the level asked for",
            "pattern": REGION_CODE_AT_LEVEL,
        }
    )
    region_name = ma.fields.String(
        allow_none=True, metadata={"description": "from the region table; null if not loaded"}
    )


# Groups in each status, one field per status of the group workflow.
GroupStatusCounts = Output.from_dict(
    {status: ma.fields.Integer() for status in GROUP_STATUSES}, name="GroupStatusCounts"
)


class GroupFigures(Output):
    groups = ma.fields.Integer(metadata={"description": "groups in any status"})
    members = ma.fields.Integer(
        metadata={"description": "current members (not removed) of those groups"}
    )
    by_status = ma.fields.Nested(GroupStatusCounts)


class GroupRegionRow(RegionColumns, GroupFigures):
    pass


class GroupReport(Output):
    rows = ma.fields.List(ma.fields.Nested(GroupRegionRow))
    total = ma.fields.Nested(GroupFigures)


class BusinessTypeFigures(Output):
    groups = ma.fields.Integer()
    members = ma.fields.Integer(metadata={"description": "current members (not removed)"})


class BusinessTypeRow(BusinessTypeFigures):
    business_type = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "in lower case, as the group list's filter takes it; null: not recorded"
        },
    )


class BusinessTypeReport(Output):
    rows = ma.fields.List(ma.fields.Nested(BusinessTypeRow))
    total = ma.fields.Nested(BusinessTypeFigures)


class VisitFigures(Output):
    groups = ma.fields.Integer(metadata={"description": "groups not dissolved"})
    visits = ma.fields.Integer(metadata={"description": "every visit those groups received"})
    groups_visited = ma.fields.Integer(metadata={"description": "groups visited at least once"})
    groups_visited_pct = ma.fields.Float(allow_none=True, metadata=PERCENT)
    visits_per_group = ma.fields.Float(metadata={"description": "visits / groups, two decimals"})
    groups_not_visited_recently = ma.fields.Integer(
        metadata={"description": f"groups unvisited in the {VISIT_WINDOW_DAYS} days up to as_of"}
    )


class VisitRegionRow(RegionColumns, VisitFigures):
    pass


class VisitReport(Output):
    as_of = ma.fields.Date(metadata={"description": "today, in the region's time zone"})
    window_days = ma.fields.Integer(metadata={"description": "what counts as recently"})
    rows = ma.fields.List(ma.fields.Nested(VisitRegionRow))
    total = ma.fields.Nested(VisitFigures)


class RevenueFigures(Output):
    groups_with_grant = ma.fields.Integer(metadata={"description": "groups with a grant paid"})
    groups_compared = ma.fields.Integer(
        metadata={"description": "of those, groups with revenue reported both before and after"}
    )
    median_revenue_before = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "whole rupiah per month; null when no group is compared"},
    )
    median_revenue_after = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "whole rupiah per month; null when no group is compared"},
    )
    groups_improved = ma.fields.Integer(
        metadata={"description": "compared groups whose median after exceeds their median before"}
    )
    groups_improved_pct = ma.fields.Float(allow_none=True, metadata=PERCENT)


class RevenueRegionRow(RegionColumns, RevenueFigures):
    pass


class RevenueReport(Output):
    rows = ma.fields.List(ma.fields.Nested(RevenueRegionRow))
    total = ma.fields.Nested(RevenueFigures)


def _prefix(args: dict) -> str:
    return report_prefix(current_principal().scope, args.get("region"))


@blp.route("/groups")
class GroupsReport(MethodView):
    @blp.arguments(RegionReportQuery, location="query")
    @blp.response(200, GroupReport)
    @blp.operation("report_groups_by_region", roles=READERS)
    def get(self, args):
        """Groups by status and their current members, per region at a level and in total."""
        prefix = _prefix(args)
        with current_context().db.reading(prepared=False) as connection:
            return groups_by_region(connection, prefix, args["level"])


@blp.route("/business-types")
class BusinessTypesReport(MethodView):
    @blp.arguments(BusinessTypeQuery, location="query")
    @blp.response(200, BusinessTypeReport)
    @blp.operation("report_business_types", roles=READERS)
    def get(self, args):
        """Groups and current members per business type, the most common first."""
        prefix = _prefix(args)
        with current_context().db.reading(prepared=False) as connection:
            return business_types(connection, prefix)


@blp.route("/visits")
class VisitsReport(MethodView):
    @blp.arguments(RegionReportQuery, location="query")
    @blp.response(200, VisitReport)
    @blp.operation("report_visits_by_region", roles=READERS)
    def get(self, args):
        """Mentoring per region: groups visited, visits per group, groups unvisited lately."""
        prefix = _prefix(args)
        today = utcnow().astimezone(zone_of(prefix)).date()
        with current_context().db.reading(prepared=False) as connection:
            return visits_by_region(connection, prefix, args["level"], today)


@blp.route("/revenue")
class RevenueReportResource(MethodView):
    @blp.arguments(RegionReportQuery, location="query")
    @blp.response(200, RevenueReport)
    @blp.operation("report_revenue_by_region", roles=READERS)
    def get(self, args):
        """Median monthly revenue at visits before and after each group's first grant was paid."""
        prefix = _prefix(args)
        with current_context().db.reading(prepared=False) as connection:
            return revenue_by_region(connection, prefix, args["level"])
