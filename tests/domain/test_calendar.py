"""Business-time arithmetic across weekends, holidays, DST changes and long targets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.calendar import WEEKDAYS, BusinessCalendar, add_business_time, business_time_between, holidays_from_ics

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = BusinessCalendar(name="office", timezone="Asia/Shanghai",
                          hours={d: ["09:00-12:00", "13:00-18:00"] for d in WEEKDAYS[:5]},
                          holidays=[date(2026, 10, 1), date(2026, 10, 2)])


def at(y, mo, d, h, mi=0, zone=SHANGHAI):
    return datetime(y, mo, d, h, mi, tzinfo=zone)


def test_time_within_one_working_day_skips_the_lunch_break():
    assert add_business_time(OFFICE, at(2026, 9, 7, 10), timedelta(hours=4)) == at(2026, 9, 7, 15)


def test_friday_afternoon_target_lands_on_monday():
    # Fri 16:00 + 4 h: 2 h on Friday, 2 h on Monday morning.
    assert add_business_time(OFFICE, at(2026, 9, 11, 16), timedelta(hours=4)) == at(2026, 9, 14, 11)


def test_a_case_opened_at_night_starts_counting_at_opening_time():
    assert add_business_time(OFFICE, at(2026, 9, 8, 22), timedelta(minutes=30)) == at(2026, 9, 9, 9, 30)


def test_holidays_move_the_deadline():
    # Wed 30 Sep 17:00 + 2 h: 1 h that day; 1-2 Oct are holidays, 3-4 Oct a weekend -> Mon 5 Oct 10:00.
    assert add_business_time(OFFICE, at(2026, 9, 30, 17), timedelta(hours=2)) == at(2026, 10, 5, 10)


def test_targets_longer_than_a_week():
    # 48 business hours = six 8-hour days: Mon 7 Sep 09:00 -> Mon 14 Sep 18:00 exactly.
    start = at(2026, 9, 7, 9)
    due = add_business_time(OFFICE, start, timedelta(hours=48))
    assert due == at(2026, 9, 14, 18)
    assert business_time_between(OFFICE, start, due) == timedelta(hours=48)


def test_dst_spring_forward_day_has_an_hour_less():
    always = BusinessCalendar(timezone="Europe/Berlin", always_open=True)
    start = datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN)  # clocks go 02:00 -> 03:00 that night
    next_midnight = datetime(2026, 3, 30, 0, 0, tzinfo=BERLIN)
    assert business_time_between(always, start, next_midnight) == timedelta(hours=23)
    assert add_business_time(always, start, timedelta(hours=23)) == next_midnight


def test_dst_autumn_working_hours_stay_wall_clock_hours():
    berlin = BusinessCalendar(timezone="Europe/Berlin", hours={d: ["09:00-17:00"] for d in WEEKDAYS[:5]})
    # Fri 23 Oct 16:00 CEST + 2 h -> Mon 26 Oct 10:00 CET (the Sunday change does not move 9 to 5).
    due = add_business_time(berlin, datetime(2026, 10, 23, 16, tzinfo=BERLIN), timedelta(hours=2))
    assert due == datetime(2026, 10, 26, 10, tzinfo=BERLIN)
    local = due.astimezone(BERLIN)
    assert (local.hour, local.utcoffset()) == (10, timedelta(hours=1))


def test_round_the_clock_calendar_is_plain_elapsed_time():
    always = BusinessCalendar(always_open=True)
    start = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    assert add_business_time(always, start, timedelta(days=9)) == start + timedelta(days=9)


def test_ics_holidays_are_imported():
    ics = ("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:National Day\r\nDTSTART;VALUE=DATE:20261001\r\n"
           "DTEND;VALUE=DATE:20261008\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260101\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n")
    days = holidays_from_ics(ics)
    assert days[0] == date(2026, 1, 1) and len(days) == 8 and days[-1] == date(2026, 10, 7)


@pytest.mark.parametrize("bad,named", [
    ({"timezone": "Mars/Olympus", "always_open": True}, "unknown time zone"),
    ({"hours": {"monday": ["09:00-17:00"]}}, "unknown weekday"),
    ({"hours": {"mon": ["9-5"]}}, "HH:MM-HH:MM"),
    ({"hours": {}}, "no working hours"),
])
def test_bad_calendars_say_what_is_wrong(bad, named):
    with pytest.raises(ValidationError, match=named):
        BusinessCalendar(**bad)


@settings(max_examples=200, deadline=None)
@given(start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
       minutes=st.integers(min_value=1, max_value=60 * 24 * 20))
def test_adding_then_measuring_business_time_gives_it_back(start, minutes):
    due = add_business_time(OFFICE, start, timedelta(minutes=minutes))
    assert due > start
    assert business_time_between(OFFICE, start, due) == timedelta(minutes=minutes)
