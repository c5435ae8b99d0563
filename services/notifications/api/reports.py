"""/api/v1/reports: the notification figures a dashboard shows, per region, in the caller's
region (every staff role reads them: they are counts, never a number or a name)."""

from __future__ import annotations

from flask.views import MethodView

from services.notifications.reports import message_report, opt_out_report, reach_report
from services.notifications.schemas import (
    MessageReportQuerySchema,
    MessageReportSchema,
    OptOutReportSchema,
    PeriodReportQuerySchema,
    ReachReportSchema,
    ReportQuerySchema,
)
from shared.api import Blueprint
from shared.auth import current_principal
from shared.http import current_context
from shared.tokens import READERS

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    description="Figures per region: messages by status and channel, members reached, opt-outs.",
)


def _report(build, args) -> dict:
    # A region prefix (LIKE) needs a plan made for its value: not a prepared statement.
    with current_context().db.reading(prepared=False) as connection:
        return build(connection, current_principal().scope, args)


@blp.route("/messages")
class MessageReport(MethodView):
    @blp.arguments(MessageReportQuerySchema, location="query")
    @blp.response(200, MessageReportSchema)
    @blp.operation("report_messages_by_region", roles=READERS)
    def get(self, args):
        """Messages made in the period per region and channel: counts by status, delivery
        percentages, and a total."""
        return _report(message_report, args)


@blp.route("/reach")
class ReachReport(MethodView):
    @blp.arguments(PeriodReportQuerySchema, location="query")
    @blp.response(200, ReachReportSchema)
    @blp.operation("report_reach_by_region", roles=READERS)
    def get(self, args):
        """Members and groups messaged in the period per region, and how many were reached."""
        return _report(reach_report, args)


@blp.route("/opt-outs")
class OptOutReport(MethodView):
    @blp.arguments(ReportQuerySchema, location="query")
    @blp.response(200, OptOutReportSchema)
    @blp.operation("report_opt_outs_by_region", roles=READERS)
    def get(self, args):
        """Members who opted out of SMS per region: how many, and their share."""
        return _report(opt_out_report, args)
