"""/api/v1/calendar: days off (public holidays and collective leave) that deadlines skip."""

from __future__ import annotations

from datetime import date

from flask.views import MethodView
from sqlalchemy import delete, extract, select

from services.grants.api.common import current_actor
from services.grants.calendar import WorkingCalendar, public_holidays
from services.grants.models import LeaveDay
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


def calendar_view(year: int) -> dict:
    session = current_context().db.session
    leave = {
        d.day: d.description
        for d in session.scalars(select(LeaveDay).where(extract("year", LeaveDay.day) == year))
    }
    days = [
        {"day": day, "description": name, "kind": "public_holiday"}
        for day, name in public_holidays(year).items()
    ] + [
        {"day": day, "description": text, "kind": "collective_leave"} for day, text in leave.items()
    ]
    calendar = WorkingCalendar(leave)
    working = calendar.working_days_between(date(year - 1, 12, 31), date(year, 12, 31))
    return {
        "year": year,
        "days_off": sorted(days, key=lambda d: (d["day"], d["kind"])),
        "working_days": working,
    }


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
        return calendar_view(year)

    @blp.arguments(LeaveDaysInput)
    @blp.response(200, CalendarSchema)
    @blp.operation("set_leave_days", roles=("admin",))
    def put(self, data, year: int):
        """Set a year's collective leave days (cuti bersama), as the joint decree lists them;
        deadlines counted from now on skip them."""
        _check_year(year)
        wrong = [i for i, d in enumerate(data["days"]) if d["day"].year != year]
        if wrong:
            raise InvalidInput(
                f"Every day must lie in {year}.",
                errors=[{"field": f"days.{i}.day", "message": f"not in {year}"} for i in wrong],
            )
        session = current_context().db.session
        session.execute(delete(LeaveDay).where(extract("year", LeaveDay.day) == year))
        actor = current_actor().sub
        for day in {d["day"]: d for d in data["days"]}.values():
            session.add(LeaveDay(day=day["day"], description=day["description"], created_by=actor))
        commit_with_response()
        return calendar_view(year)
