"""The working-time calendar: 8 working hours across evenings, weekends, holidays and Tết."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from gateway.domain.dossier import VN_TZ
from gateway.domain.working_calendar import WorkingCalendar

CAL = WorkingCalendar()


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


@pytest.mark.parametrize(("filed", "deadline"), [
    (vn(2026, 12, 7, 7, 0), vn(2026, 12, 7, 17, 0)),  # Monday 07:00: a whole working day is exactly 8 hours
    (vn(2026, 12, 7, 8, 0), vn(2026, 12, 8, 8, 0)),  # 3.5 h + 3.5 h on Monday, the last hour on Tuesday
    (vn(2026, 12, 7, 12, 0), vn(2026, 12, 8, 11, 30)),  # filed at lunch: counts from 13:30
    (vn(2026, 12, 7, 20, 0), vn(2026, 12, 8, 17, 0)),  # filed in the evening: from the next morning
    (vn(2026, 12, 11, 16, 30), vn(2026, 12, 14, 16, 30)),  # Friday 16:30: half an hour, then Monday
    (vn(2026, 12, 12, 10, 0), vn(2026, 12, 14, 17, 0)),  # filed on Saturday: from Monday 07:00
])
def test_deadline_skips_evenings_lunch_and_weekends(filed, deadline):
    assert CAL.add_working_hours(filed, 8) == deadline


def test_deadline_across_a_public_holiday():
    # National Day 1-2 September 2026 (Tue, Wed), and Monday 31 August bridged (made up on Saturday 22 Aug).
    assert not CAL.is_working_day(date(2026, 9, 2)) and not CAL.is_working_day(date(2026, 8, 31))
    # Friday 13:30: 3.5 h, then Thursday 3 September from 07:00: 4.5 h.
    assert CAL.add_working_hours(vn(2026, 8, 28, 13, 30), 8) == vn(2026, 9, 3, 11, 30)


def test_deadline_across_tet_by_the_lunar_calendar():
    # Tết Bính Ngọ: New Year's Eve is Monday 16 February 2026; offices are closed 16-20 February.
    assert CAL.holiday_name(date(2026, 2, 17)) == "Tết Nguyên Đán"
    # Friday 13 Feb 15:00: 2 h, then Monday 23 Feb: 4.5 h to 11:30 and 1.5 h from 13:30.
    assert CAL.add_working_hours(vn(2026, 2, 13, 15, 0), 8) == vn(2026, 2, 23, 15, 0)


def test_a_make_up_saturday_is_worked_and_extra_days_off_are_not():
    assert CAL.is_working_day(date(2026, 8, 22))  # Saturday worked for the bridged 31 August
    province = WorkingCalendar.of(days_off=[date(2026, 11, 30)], working_days=[date(2026, 11, 28)])
    assert province.add_working_hours(vn(2026, 11, 27, 16, 30), 8) == vn(2026, 11, 28, 16, 30)
    assert WorkingCalendar.of(days_off=[date(2026, 11, 30)]).add_working_hours(
        vn(2026, 11, 27, 16, 30), 8) == vn(2026, 12, 1, 16, 30)


def test_a_time_in_another_zone_is_read_as_the_instant_it_is():
    utc = datetime.fromisoformat("2026-11-27T09:30:00+00:00")  # 16:30 in Hà Nội, a Friday
    assert CAL.add_working_hours(utc, 8) == vn(2026, 11, 30, 16, 30)
    with pytest.raises(ValueError):
        CAL.add_working_hours(datetime(2026, 11, 27, 16, 30), 8)
