"""Working days on the Indonesian calendar: Monday to Friday, minus the public holidays of the
`holidays` package and the collective leave days (cuti bersama) an admin keeps per year.
Deadlines are counted in the region's own time zone and stored in UTC."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import holidays
from sqlalchemy import delete, extract, select
from sqlalchemy.orm import Session

from services.grants.models import LeaveDay
from shared.errors import InvalidInput
from shared.timezones import zone_of


@lru_cache(maxsize=32)
def public_holidays(year: int) -> dict[date, str]:
    """Indonesia's public holidays of a year, by date."""
    return dict(holidays.country_holidays("ID", years=year, language="id"))


class WorkingCalendar:
    """Which days are working days, given the office's collective leave days."""

    def __init__(self, leave_days: Iterable[date] = ()):
        self.leave_days = frozenset(leave_days)

    @classmethod
    def load(cls, session: Session) -> WorkingCalendar:
        return cls(session.scalars(select(LeaveDay.day)))

    def is_working_day(self, day: date) -> bool:
        return (
            day.weekday() < 5
            and day not in self.leave_days
            and day not in public_holidays(day.year)
        )

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day after `start` (the start day itself does not count)."""
        day = start
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after `start` up to and including `end`."""
        count, day = 0, start
        while day < end:
            day += timedelta(days=1)
            count += self.is_working_day(day)
        return count

    def working_day_numbers(self, first: date, last: date) -> list[int]:
        """For each day from `first` to `last`, the working days after `first` up to and
        including it: the working days between two of the days are the difference of theirs."""
        numbers, counted, day = [0], 0, first
        while day < last:
            day += timedelta(days=1)
            counted += self.is_working_day(day)
            numbers.append(counted)
        return numbers

    def due_at(self, entered_at: datetime, working_days: int, region_code: str) -> datetime:
        """The end (local midnight) of the `working_days`-th working day after the day the
        stage began in the region's zone, in UTC."""
        zone = zone_of(region_code)
        local_day = entered_at.astimezone(zone).date()
        last = self.add_working_days(local_day, working_days)
        return end_of_day(last, region_code)


def end_of_day(day: date, region_code: str) -> datetime:
    """Midnight after `day` in the region's zone, in UTC: the moment a deadline on `day` passes."""
    zone = zone_of(region_code)
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def local_date(moment: datetime, region_code: str) -> date:
    """The calendar date of `moment` in the region."""
    return moment.astimezone(zone_of(region_code)).date()


def year_view(session: Session, year: int) -> dict:
    """A year's days off (public holidays and collective leave) and its working days."""
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


def set_leave_days(session: Session, year: int, days: list[dict], *, actor: str) -> None:
    """Replace a year's collective leave days; InvalidInput for a day outside the year."""
    wrong = [i for i, d in enumerate(days) if d["day"].year != year]
    if wrong:
        raise InvalidInput(
            f"Every day must lie in {year}.",
            errors=[{"field": f"days.{i}.day", "message": f"not in {year}"} for i in wrong],
        )
    session.execute(delete(LeaveDay).where(extract("year", LeaveDay.day) == year))
    for day in {d["day"]: d for d in days}.values():
        session.add(LeaveDay(day=day["day"], description=day["description"], created_by=actor))
