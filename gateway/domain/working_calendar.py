"""Working time of Vietnamese public offices, and deadlines counted in working hours.

Offices work 07:00-11:30 and 13:30-17:00, Monday to Friday, except public holidays (Tết follows the lunar
calendar) and with the occasional Saturday worked to make up for a bridged day off. The holidays and the
make-up Saturdays come from the `holidays` library; a province's own days off (or a year the library does
not know yet) are added by configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from .dossier import VN_TZ

# (start, end) of each working period of a day, in Vietnamese local time.
OFFICE_HOURS: tuple[tuple[time, time], ...] = ((time(7, 0), time(11, 30)), (time(13, 30), time(17, 0)))
# How long an officer has to accept, refuse or ask for more after a dossier is filed.
ACKNOWLEDGE_WITHIN_HOURS = 8


@lru_cache(maxsize=64)
def _public_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=year, language="vi")


@dataclass(frozen=True)
class WorkingCalendar:
    extra_days_off: frozenset[date] = field(default_factory=frozenset)
    extra_working_days: frozenset[date] = field(default_factory=frozenset)  # e.g. a make-up Saturday
    periods: tuple[tuple[time, time], ...] = OFFICE_HOURS

    @classmethod
    def of(cls, days_off: Iterable[date] = (), working_days: Iterable[date] = ()) -> WorkingCalendar:
        return cls(frozenset(days_off), frozenset(working_days))

    def holiday_name(self, day: date) -> str | None:
        if day in self.extra_days_off:
            return "Ngày nghỉ theo quyết định của tỉnh"
        return _public_holidays(day.year).get(day)

    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        if day in self.extra_days_off:
            return False
        return _public_holidays(day.year).is_working_day(day)  # weekends, holidays, make-up Saturdays

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` of working time after `start` (an aware datetime), in Vietnamese time.

        Time outside office hours does not count: a dossier filed on Friday at 16:30 has half an hour on
        Friday and the rest from Monday 07:00 (or the next working day after a holiday)."""
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        left = timedelta(hours=hours)
        moment = start.astimezone(VN_TZ)
        day = moment.date()
        for _ in range(3660):  # ten years of days: a calendar configured with no working day at all stops here
            if self.is_working_day(day):
                for begin, end in self.periods:
                    period_start = datetime.combine(day, begin, VN_TZ)
                    period_end = datetime.combine(day, end, VN_TZ)
                    if moment >= period_end:
                        continue
                    moment = max(moment, period_start)
                    if moment + left <= period_end:
                        return moment + left
                    left -= period_end - moment
                    moment = period_end
            day += timedelta(days=1)
            moment = datetime.combine(day, time(0), VN_TZ)
        raise ValueError("the calendar has no working time in the next ten years")

    def acknowledgment_deadline(self, filed_at: datetime) -> datetime:
        return self.add_working_hours(filed_at, ACKNOWLEDGE_WITHIN_HOURS)
