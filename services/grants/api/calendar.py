"""/api/v1/calendar: days off (public holidays and collective leave) that deadlines skip."""

from __future__ import annotations

from flask.views import MethodView

from services.grants.api.common import current_actor
from services.grants.calendar import set_leave_days, year_view
from services.grants.schemas import CalendarSchema, LeaveDaysInput
from shared.api import Blueprint
from shared.errors import InvalidInput
from shared.http import commit_with_response, current_context
from shared.tokens import READERS

blp = Blueprint(
    "calendar",
    __name__,
    url_prefix="/api/v1/calendar",
    description="The working-day calendar deadlines are counted on.",
)


def _check_year(year: int) -> None:
    if not 2000 <= year <= 2100:
        raise InvalidInput.field("year", "Must be between 2000 and 2100.")


@blp.route("/<int:year>")
class CalendarYear(MethodView):
    @blp.response(200, CalendarSchema)
    @blp.operation("get_calendar", roles=READERS)
    def get(self, year: int):
        """A year's days off: Indonesia's public holidays and the collective leave days."""
        _check_year(year)
        return year_view(current_context().db.session, year)

    @blp.arguments(LeaveDaysInput)
    @blp.response(200, CalendarSchema)
    @blp.operation(
        "set_leave_days",
        roles=("admin",),
        nationwide="The leave days count in every region's deadlines",
    )
    def put(self, data, year: int):
        """Set a year's collective leave days (cuti bersama), as the joint decree lists them;
        deadlines counted from now on skip them."""
        _check_year(year)
        session = current_context().db.session
        set_leave_days(session, year, data["days"], actor=current_actor().sub)
        commit_with_response()
        return year_view(session, year)
