"""Business-time arithmetic across weekends, holidays, DST changes and long targets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.calendar import WEEKDAYS, BusinessCalendar, add_business_time, business_time_between

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


# --- holidays, make-up working days and closures: which wins ------------------------------------

def utc(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


# 2026-03-07 is a Saturday, 03-08 a Sunday, 03-09 a Monday, 03-10 a Tuesday.
SAT_DESK = BusinessCalendar(
    name="sat_desk", timezone="Asia/Shanghai",
    hours={**{d: ["09:00-12:00", "13:00-18:00"] for d in WEEKDAYS[:5]}, "sat": ["09:00-11:00"]},
    workdays=[date(2026, 3, 8), date(2026, 3, 7)], holidays=[date(2026, 3, 9)],
    closures=[{"start": at(2026, 3, 10, 13, 30), "end": at(2026, 3, 10, 15), "note": "fire drill"}])


def test_a_make_up_day_is_worked_with_mondays_hours_even_on_a_saturday_with_its_own():
    assert SAT_DESK.open_spans(date(2026, 3, 7)) == [(utc(2026, 3, 7, 1), utc(2026, 3, 7, 4)),
                                                     (utc(2026, 3, 7, 5), utc(2026, 3, 7, 10))]
    assert SAT_DESK.open_spans(date(2026, 3, 8)) == [(utc(2026, 3, 8, 1), utc(2026, 3, 8, 4)),
                                                     (utc(2026, 3, 8, 5), utc(2026, 3, 8, 10))]
    assert SAT_DESK.open_spans(date(2026, 3, 14)) == [(utc(2026, 3, 14, 1), utc(2026, 3, 14, 3))]  # plain Saturday


def test_a_holiday_closes_the_whole_day_and_a_closure_cuts_a_span():
    assert SAT_DESK.open_spans(date(2026, 3, 9)) == []
    assert SAT_DESK.open_spans(date(2026, 3, 10)) == [
        (utc(2026, 3, 10, 1), utc(2026, 3, 10, 4)), (utc(2026, 3, 10, 5), utc(2026, 3, 10, 5, 30)),
        (utc(2026, 3, 10, 7), utc(2026, 3, 10, 10))]


def test_deadlines_across_make_up_days_holidays_and_closures():
    # Fri 17:00 + 10 h: 1 h Friday, 8 h on the make-up Saturday, 1 h on the make-up Sunday.
    assert add_business_time(SAT_DESK, at(2026, 3, 6, 17), timedelta(hours=10)) == at(2026, 3, 8, 10)
    # Sun 17:00 + 2 h: 1 h Sunday, Monday a holiday, 1 h Tuesday morning.
    assert add_business_time(SAT_DESK, at(2026, 3, 8, 17), timedelta(hours=2)) == at(2026, 3, 10, 10)
    # Tue 13:00 + 1 h: 30 min, the 13:30-15:00 closure, 30 min.
    assert add_business_time(SAT_DESK, at(2026, 3, 10, 13), timedelta(hours=1)) == at(2026, 3, 10, 15, 30)
    # Sat 8 h + Sun 8 h + Mon 0 + Tue 3 + 0.5 + 3 h.
    assert business_time_between(SAT_DESK, at(2026, 3, 7, 0), at(2026, 3, 11, 0)) == timedelta(hours=22.5)


def test_make_up_hours_can_be_given():
    cal = BusinessCalendar(timezone="Asia/Shanghai", hours={"mon": ["09:00-18:00"]},
                           makeup_hours=["10:00-16:00"], workdays=[date(2026, 3, 7)])
    assert cal.open_spans(date(2026, 3, 7)) == [(utc(2026, 3, 7, 2), utc(2026, 3, 7, 8))]


def test_closures_cut_a_round_the_clock_desk_and_overlapping_ones_merge():
    cal = BusinessCalendar(always_open=True, closures=[
        {"start": utc(2026, 1, 1, 10), "end": utc(2026, 1, 1, 12)},
        {"start": utc(2026, 1, 1, 11), "end": utc(2026, 1, 1, 13)}])
    assert business_time_between(cal, utc(2026, 1, 1, 0), utc(2026, 1, 2, 0)) == timedelta(hours=21)
    assert add_business_time(cal, utc(2026, 1, 1, 9), timedelta(hours=2)) == utc(2026, 1, 1, 14)


def test_a_calendar_survives_serialisation_unchanged():
    again = BusinessCalendar.model_validate_json(SAT_DESK.model_dump_json())
    assert again == SAT_DESK
    assert add_business_time(again, at(2026, 3, 6, 17), timedelta(hours=10)) == at(2026, 3, 8, 10)


@pytest.mark.parametrize("bad,named", [
    ({"hours": {"mon": ["09:00-17:00"]}, "holidays": ["2026-02-14"], "workdays": ["2026-02-14"]},
     "2026-02-14 listed both as a holiday and as a make-up working day"),
    ({"hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "overlap"),
    ({"hours": {"mon": ["25:00-26:00"]}}, "not times of day"),
    ({"hours": {"tue": ["09:00-17:00"]}, "workdays": ["2026-02-14"]}, "no Monday hours"),
    ({"always_open": True, "holidays": ["2026-10-01"]}, "always_open"),
    ({"always_open": True, "closures": [{"start": "2026-01-01T12:00:00Z", "end": "2026-01-01T11:00:00Z"}]},
     "at or before it starts"),
    ({"always_open": True, "closures": [{"start": "2026-01-01T10:00:00", "end": "2026-01-01T11:00:00Z"}]},
     "timezone"),
])
def test_bad_calendar_entries_are_named(bad, named):
    with pytest.raises(ValidationError, match=named):
        BusinessCalendar(**bad)


# --- DST: New York, and wall times in the gap or the fold ----------------------------------------

NEW_YORK = ZoneInfo("America/New_York")
NY = BusinessCalendar(timezone="America/New_York",
                      hours={**{d: ["09:00-17:00"] for d in WEEKDAYS[:5]}, "sun": ["00:00-24:00"]})


def test_new_york_spring_forward_sunday_has_23_hours_and_the_autumn_one_25():
    # Clocks 02:00 EST -> 03:00 EDT on Sun 8 Mar 2026; 02:00 EDT -> 01:00 EST on Sun 1 Nov 2026.
    sat, tue = datetime(2026, 3, 7, 0, tzinfo=NEW_YORK), datetime(2026, 3, 10, 0, tzinfo=NEW_YORK)
    assert business_time_between(NY, sat, tue) == timedelta(hours=23 + 8)
    # Sat 12:00 EST + 24 h: all 23 h of Sunday, then Monday 09:00-10:00 EDT (14:00 UTC).
    assert add_business_time(NY, datetime(2026, 3, 7, 12, tzinfo=NEW_YORK), timedelta(hours=24)) == utc(2026, 3, 9, 14)
    sun, mon = datetime(2026, 11, 1, 0, tzinfo=NEW_YORK), datetime(2026, 11, 2, 0, tzinfo=NEW_YORK)
    assert business_time_between(NY, sun, mon) == timedelta(hours=25)


def test_a_wall_time_in_the_gap_is_read_with_the_offset_before_it_and_a_repeated_one_is_the_first():
    gap = BusinessCalendar(timezone="America/New_York", hours={"sun": ["02:30-05:00"]})
    # An ordinary Sunday (EST, UTC-5): 07:30-10:00 UTC.
    assert gap.open_spans(date(2026, 3, 1)) == [(utc(2026, 3, 1, 7, 30), utc(2026, 3, 1, 10))]
    # 8 Mar: 02:30 does not exist; read with EST it is 07:30 UTC (03:30 EDT); 05:00 EDT is 09:00 UTC.
    assert gap.open_spans(date(2026, 3, 8)) == [(utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 9))]
    fold = BusinessCalendar(timezone="America/New_York", hours={"sun": ["01:30-01:45"]})
    # 1 Nov: 01:30 happens twice; the first (EDT, UTC-4) is 05:30 UTC.
    assert fold.open_spans(date(2026, 11, 1)) == [(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 5, 45))]


# --- amounts of any size -------------------------------------------------------------------------

UTC_OFFICE = BusinessCalendar(hours={d: ["09:00-17:00"] for d in WEEKDAYS[:5]})  # 40 h a week
BERLIN_OFFICE = BusinessCalendar(timezone="Europe/Berlin", hours={d: ["09:00-17:00"] for d in WEEKDAYS[:5]})


def test_a_whole_week_ends_on_friday_evening_not_on_monday_morning():
    assert add_business_time(UTC_OFFICE, utc(2026, 1, 5, 9), timedelta(hours=40)) == utc(2026, 1, 9, 17)
    assert add_business_time(UTC_OFFICE, utc(2026, 1, 5, 9), timedelta(hours=40, minutes=1)) == utc(2026, 1, 12, 9, 1)


@pytest.mark.parametrize("cal,due", [
    # 7,200 h = 180 weeks of 40 h from Mon 5 Jan 2026 09:00: Friday of the 180th week, 17:00, i.e.
    # 5 Jan 2026 + 179 weeks (Mon 11 Jun 2029) + 4 days = Fri 15 Jun 2029.
    (UTC_OFFICE, utc(2029, 6, 15, 17)),
    (BERLIN_OFFICE, utc(2029, 6, 15, 15)),  # 17:00 CEST; the 7 DST changes on the way move nothing
])
def test_targets_above_7000_business_hours(cal, due):
    start = datetime(2026, 1, 5, 9, tzinfo=ZoneInfo(cal.timezone))
    assert add_business_time(cal, start, timedelta(hours=7200)) == due
    assert business_time_between(cal, start, due) == timedelta(hours=7200)


def test_business_time_over_110_years_is_counted_quickly():
    # 1 Jan 1990 (a Monday) to 1 Jan 2100: 40,177 days = 5,739 weeks + Mon-Thu = 28,699 weekdays.
    assert business_time_between(UTC_OFFICE, utc(1990, 1, 1, 0), utc(2100, 1, 1, 0)) == timedelta(hours=28699 * 8)


def test_absurd_amounts_end_at_forever_instead_of_failing():
    from domain.calendar import FOREVER
    assert add_business_time(OFFICE, at(2026, 1, 5, 9), timedelta(hours=10**7)) == FOREVER
    assert add_business_time(OFFICE, at(2026, 1, 5, 9), timedelta(days=999_999_999)) == FOREVER
    due = add_business_time(BERLIN_OFFICE, utc(2026, 1, 5, 8), timedelta(hours=100_000))
    assert business_time_between(BERLIN_OFFICE, utc(2026, 1, 5, 8), due) == timedelta(hours=100_000)


def test_a_closure_in_an_otherwise_regular_week_is_not_skipped_over():
    cal = BusinessCalendar(hours={d: ["09:00-17:00"] for d in WEEKDAYS[:5]},
                           closures=[{"start": utc(2026, 1, 14, 10), "end": utc(2026, 1, 14, 12)}])
    # 80 h from Mon 5 Jan 09:00 would end Fri 16 Jan 17:00; the 2 h closure moves it to Mon 19 Jan 11:00.
    assert add_business_time(cal, utc(2026, 1, 5, 9), timedelta(hours=80)) == utc(2026, 1, 19, 11)
    assert business_time_between(cal, utc(2026, 1, 5, 0), utc(2026, 1, 19, 0)) == timedelta(hours=78)
    # A closure over weeks: 1-20 Feb 2026 (Sun to Fri) closed; Mon 26 Jan 09:00 + 80 h: 40 h that
    # week, then Mon 23 Feb 09:00 + 40 h -> Fri 27 Feb 17:00.
    long = BusinessCalendar(hours={d: ["09:00-17:00"] for d in WEEKDAYS[:5]},
                            closures=[{"start": utc(2026, 2, 1, 0), "end": utc(2026, 2, 21, 0)}])
    assert add_business_time(long, utc(2026, 1, 26, 9), timedelta(hours=80)) == utc(2026, 2, 27, 17)


def test_weeks_with_a_change_of_time_are_not_skipped_as_ordinary_weeks():
    always = BusinessCalendar(timezone="Europe/Berlin", always_open=True)
    # March 2026 in Berlin has 31 days less the hour skipped on the 29th; October one hour more.
    march, april = datetime(2026, 3, 1, tzinfo=BERLIN), datetime(2026, 4, 1, tzinfo=BERLIN)
    assert business_time_between(always, march, april) == timedelta(hours=31 * 24 - 1)
    assert add_business_time(always, march, timedelta(hours=31 * 24 - 1)) == april
    october, november = datetime(2026, 10, 1, tzinfo=BERLIN), datetime(2026, 11, 1, tzinfo=BERLIN)
    assert business_time_between(always, october, november) == timedelta(hours=31 * 24 + 1)
    # Wed 23-24 and Sun 01:30-03:30: March-April 2026 has 9 Wednesdays (9 h) and 9 Sundays, 2 h each
    # but 29 Mar, when 02:00-03:00 does not exist (1 h): 26 h.
    sparse = BusinessCalendar(timezone="Europe/Berlin", hours={"wed": ["23:00-24:00"], "sun": ["01:30-03:30"]})
    may = datetime(2026, 5, 1, tzinfo=BERLIN)
    assert business_time_between(sparse, march, may) == timedelta(hours=26)
    assert add_business_time(sparse, march, timedelta(hours=26)) == datetime(2026, 4, 30, 0, tzinfo=BERLIN)
