"""Mainland China's holidays and make-up working days on the shipped `business` calendar.

Expected dates are written from the State Council General Office's notices on the 2025 and 2026
holiday arrangements (国务院办公厅关于2025年/2026年部分节假日安排的通知); expected instants are
worked out by hand on Asia/Shanghai (UTC+8), 09:00-12:00 and 13:00-18:00 Mon-Fri.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from casework.calendars import china_days
from casework.policy import DEFAULT_POLICY, PolicyError, calendar_coverage, coverage_warnings, load_policy
from domain.calendar import add_business_time, business_time_between

SHANGHAI = ZoneInfo("Asia/Shanghai")
BUSINESS = load_policy().calendars["business"]


def at(y, mo, d, h, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


def days(*spans: tuple[date, date]) -> list[date]:
    return [first + timedelta(days=i) for first, last in spans for i in range((last - first).days + 1)]


# 2026 notice: New Year 1-3 Jan (Sun 4 Jan worked); Spring Festival 15-23 Feb (Sat 14 and Sat 28 Feb
# worked); Qingming 4-6 Apr; Labour Day 1-5 May (Sat 9 May worked); Dragon Boat 19-21 Jun;
# Mid-autumn 25-27 Sep; National Day 1-7 Oct (Sun 20 Sep and Sat 10 Oct worked).
HOLIDAYS_2026 = days((date(2026, 1, 1), date(2026, 1, 3)), (date(2026, 2, 15), date(2026, 2, 23)),
                     (date(2026, 4, 4), date(2026, 4, 6)), (date(2026, 5, 1), date(2026, 5, 5)),
                     (date(2026, 6, 19), date(2026, 6, 21)), (date(2026, 9, 25), date(2026, 9, 27)),
                     (date(2026, 10, 1), date(2026, 10, 7)))
WORKDAYS_2026 = [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                 date(2026, 9, 20), date(2026, 10, 10)]
# 2025 notice: New Year 1 Jan; Spring Festival 28 Jan-4 Feb (Sun 26 Jan, Sat 8 Feb worked); Qingming
# 4-6 Apr; Labour Day 1-5 May (Sun 27 Apr worked); Dragon Boat 31 May-2 Jun; National Day and
# Mid-autumn 1-8 Oct (Sun 28 Sep, Sat 11 Oct worked).
HOLIDAYS_2025 = days((date(2025, 1, 1), date(2025, 1, 1)), (date(2025, 1, 28), date(2025, 2, 4)),
                     (date(2025, 4, 4), date(2025, 4, 6)), (date(2025, 5, 1), date(2025, 5, 5)),
                     (date(2025, 5, 31), date(2025, 6, 2)), (date(2025, 10, 1), date(2025, 10, 8)))
WORKDAYS_2025 = [date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)]


def test_the_package_agrees_with_the_state_councils_notices():
    found = china_days((2025, 2026))
    assert found.days.holidays == HOLIDAYS_2025 + HOLIDAYS_2026
    assert found.days.workdays == WORKDAYS_2025 + WORKDAYS_2026
    assert found.published == (date(2025, 1, 1), date(2026, 12, 31)) and found.statutory is None
    assert found.source == "chinesecalendar 1.11.0 (cn, 2025-2026)"


# 2027 and 2028 have no published notice in chinesecalendar 1.11.0: the statutory holidays of the
# national holiday measures (as revised in 2024) apply, worked out by hand: New Year's Day 1 Jan;
# Spring Festival = its eve and the first three days of the first lunar month (Chinese New Year is
# Sat 6 Feb 2027, Wed 26 Jan 2028); Qingming = the day of the Qingming solar term (5 Apr 2027,
# 4 Apr 2028); Labour Day 1-2 May; Dragon Boat = 5th day of the 5th lunar month (9 Jun 2027, 28 May
# 2028); Mid-autumn = 15th day of the 8th lunar month (15 Sep 2027, 3 Oct 2028); National Day 1-3
# Oct. A holiday on a Saturday or Sunday is given on a working day (Art. 6): the next weekday(s)
# after the festival's days. No make-up working days: only a yearly notice sets those.
STATUTORY_2027 = [date(2027, 1, 1),
                  date(2027, 2, 5), date(2027, 2, 6), date(2027, 2, 7), date(2027, 2, 8),  # eve Fri .. Mon
                  date(2027, 2, 9), date(2027, 2, 10),  # for Sat 6 and Sun 7 Feb
                  date(2027, 4, 5),
                  date(2027, 5, 1), date(2027, 5, 2), date(2027, 5, 3), date(2027, 5, 4),  # Sat, Sun -> Mon, Tue
                  date(2027, 6, 9), date(2027, 9, 15),
                  date(2027, 10, 1), date(2027, 10, 2), date(2027, 10, 3),  # Fri, Sat, Sun
                  date(2027, 10, 4), date(2027, 10, 5)]  # for Sat 2 and Sun 3 Oct
STATUTORY_2028 = [date(2028, 1, 1), date(2028, 1, 3),  # Sat -> Mon
                  date(2028, 1, 25), date(2028, 1, 26), date(2028, 1, 27), date(2028, 1, 28),  # Tue .. Fri
                  date(2028, 4, 4), date(2028, 5, 1), date(2028, 5, 2),
                  date(2028, 5, 28), date(2028, 5, 29),  # Dragon Boat on a Sunday -> Mon
                  date(2028, 10, 1), date(2028, 10, 2), date(2028, 10, 3),  # Sun (and Mid-autumn on the 3rd)
                  date(2028, 10, 4)]  # for Sun 1 Oct


def test_years_without_a_published_schedule_get_the_statutory_holidays():
    found = china_days((2026, 2028))
    assert [d for d in found.days.holidays if d.year >= 2027] == STATUTORY_2027 + STATUTORY_2028
    assert [d for d in found.days.workdays if d.year >= 2027] == []
    assert found.published == (date(2026, 1, 1), date(2026, 12, 31))
    assert found.statutory == (date(2027, 1, 1), date(2028, 12, 31))
    assert found.source == "chinesecalendar 1.11.0 (cn, 2026); statutory holidays only, from holidays 0.109 (2027-2028)"


def test_the_shipped_calendar_knows_2025_and_2026_from_the_notices_and_later_years_by_statute():
    assert [d for d in BUSINESS.holidays if d.year <= 2026] == HOLIDAYS_2025 + HOLIDAYS_2026
    assert [d for d in BUSINESS.holidays if d.year in (2027, 2028)] == STATUTORY_2027 + STATUTORY_2028
    assert BUSINESS.workdays == WORKDAYS_2025 + WORKDAYS_2026
    assert BUSINESS.covers(date(2026, 12, 31)) and not BUSINESS.covers(date(2027, 1, 1))
    assert [BUSINESS.coverage_of(d) for d in (date(2026, 12, 31), date(2027, 1, 1), date(2035, 12, 31),
                                              date(2036, 1, 1), date(2024, 12, 31))] == [
        "published", "statutory", "statutory", "weekly hours", "weekly hours"]


@pytest.mark.parametrize("start,hours,due", [
    # Within a day: Mon 9 Mar 11:00 + 2 h: 11-12, lunch, 13-14.
    (at(2026, 3, 9, 11), 2, at(2026, 3, 9, 14)),
    # At night: Tue 10 Mar 22:00 + 30 min -> Wed 09:30.
    (at(2026, 3, 10, 22), 0.5, at(2026, 3, 11, 9, 30)),
    # A weekend: Fri 6 Mar 17:00 + 2 h -> 1 h Friday, Mon 9 Mar 10:00.
    (at(2026, 3, 6, 17), 2, at(2026, 3, 9, 10)),
    # Into the make-up Saturday before Spring Festival: Fri 13 Feb 17:00 + 2 h -> Sat 14 Feb 10:00.
    (at(2026, 2, 13, 17), 2, at(2026, 2, 14, 10)),
    # Over Spring Festival: Sat 14 Feb 17:00 + 2 h: 1 h, 15-23 Feb off, Tue 24 Feb 10:00.
    (at(2026, 2, 14, 17), 2, at(2026, 2, 24, 10)),
    # The make-up Saturday after it, with its lunch break: Fri 27 Feb 17:00 + 3 h -> Sat 28 Feb 11:00;
    # Sat 28 Feb 11:30 + 1 h -> 13:30; Sat 28 Feb 20:00 + 30 min -> Mon 2 Mar 09:30.
    (at(2026, 2, 27, 17), 3, at(2026, 2, 28, 11)),
    (at(2026, 2, 28, 11, 30), 1, at(2026, 2, 28, 13, 30)),
    (at(2026, 2, 28, 20), 0.5, at(2026, 3, 2, 9, 30)),
    # New Year: Wed 31 Dec 2025 17:00 + 2 h: 1 h, 1-3 Jan off, the make-up Sunday 4 Jan 10:00.
    (at(2025, 12, 31, 17), 2, at(2026, 1, 4, 10)),
    # The make-up Sunday before National Day: Fri 18 Sep 18:00 + 1 h -> Sun 20 Sep 10:00.
    (at(2026, 9, 18, 18), 1, at(2026, 9, 20, 10)),
    # National Day: Wed 30 Sep 17:00 + 2 h: 1 h, 1-7 Oct off, Thu 8 Oct 10:00; the make-up Saturday
    # 10 Oct counts: Fri 9 Oct 17:00 + 2 h -> Sat 10 Oct 10:00.
    (at(2026, 9, 30, 17), 2, at(2026, 10, 8, 10)),
    (at(2026, 10, 9, 17), 2, at(2026, 10, 10, 10)),
])
def test_deadlines_on_the_shipped_calendar(start, hours, due):
    assert add_business_time(BUSINESS, start, timedelta(hours=hours)) == due
    assert business_time_between(BUSINESS, start, due) == timedelta(hours=hours)


def test_spring_festival_fortnight():
    # Fri 13 Feb 09:00 to Tue 24 Feb 09:00: Friday 8 h and the make-up Saturday 8 h, nothing else.
    assert business_time_between(BUSINESS, at(2026, 2, 13, 9), at(2026, 2, 24, 9)) == timedelta(hours=16)


def test_a_whole_year_of_working_days():
    # 2026: 261 weekdays, 19 of them holidays (New Year 2, Spring Festival 6, Qingming 1, Labour
    # Day 3, Dragon Boat 1, Mid-autumn 1, National Day 5), plus 6 make-up days = 248 days of 8 h.
    assert business_time_between(BUSINESS, at(2026, 1, 1, 0), at(2027, 1, 1, 0)) == timedelta(hours=248 * 8)
    # 2025: 261 weekdays - 18 holidays (1 + 6 + 1 + 3 + 1 + 6) + 5 make-up days = 248 days.
    assert business_time_between(BUSINESS, at(2025, 1, 1, 0), at(2026, 1, 1, 0)) == timedelta(hours=248 * 8)
    assert add_business_time(BUSINESS, at(2026, 1, 1, 0), timedelta(hours=248 * 8)) == at(2026, 12, 31, 18)


def test_more_than_7000_business_hours_run_into_the_statutory_years():
    # From 1 Jan 2025: 2 x 248 days = 3,968 h to Thu 31 Dec 2026 18:00; the remaining 3,232 h are 404
    # working days. 2027: 261 weekdays - 13 statutory holidays on weekdays (1 Jan; 5, 8, 9, 10 Feb;
    # 5 Apr; 3, 4 May; 9 Jun; 15 Sep; 1, 4, 5 Oct) = 248 days, so 156 remain for 2028. 2028 by month,
    # weekdays less holidays on them: Jan 21 - 5 (3, 25-28) = 16, Feb 21 (leap year), Mar 23,
    # Apr 20 - 1 = 19, May 23 - 3 (1, 2, 29) = 20, Jun 22: 121 by 30 Jun; Jul 21 -> 142; then Aug
    # 1-4, 7-11, 14-18 = 14 -> 156 on Fri 18 Aug 2028, 18:00.
    due = add_business_time(BUSINESS, at(2025, 1, 1, 0), timedelta(hours=7200))
    assert due == at(2028, 8, 18, 18)
    assert business_time_between(BUSINESS, at(2025, 1, 1, 0), due) == timedelta(hours=7200)


def write_policy(tmp_path, old: str, new: str):
    policy = tmp_path / "policy.toml"
    text = DEFAULT_POLICY.read_text()
    assert old in text
    policy.write_text(text.replace(old, new, 1))
    return policy


@pytest.mark.parametrize("old,new,named", [
    ("source_years = [2025, 2035]", "source_years = [1949, 2026]",
     r"calendars\.business\.holidays_source: chinesecalendar 1\.11\.0 knows 2004-2026 and the statutory "
     r"holidays are known from 1950, not 1949"),
    ('holidays_source = "cn"', 'holidays_source = "hk"', r"calendars\.business\.holidays_source: unknown source 'hk'"),
    ("source_years = [2025, 2035]", "source_years = 2026", r"calendars\.business\.source_years"),
    ("holidays = []", 'holidays = ["2026-02-14"]',
     r"calendars\.business: .*2026-02-14 listed both as a holiday and as a make-up working day"),
])
def test_a_bad_china_calendar_entry_is_named(tmp_path, old, new, named):
    with pytest.raises(PolicyError, match=named):
        load_policy(write_policy(tmp_path, old, new))


def test_the_years_can_be_widened_within_the_packages_coverage(tmp_path):
    cal = load_policy(write_policy(tmp_path, "source_years = [2025, 2035]", "source_years = [2013, 2026]")
                      ).calendars["business"]
    assert cal.coverage == (date(2013, 1, 1), date(2026, 12, 31))
    # National Day 2013: 1-7 Oct off, Sun 29 Sep and Sat 12 Oct worked.
    assert date(2013, 10, 7) in cal.holidays and {date(2013, 9, 29), date(2013, 10, 12)} <= set(cal.workdays)


def test_a_case_open_over_new_year_2027_counts_the_statutory_holiday():
    """Issue 10 review (r01): opened Thu 31 Dec 2026 14:00, 8 business hours: 4 h on Thursday
    (14-18), Fri 1 Jan 2027 is New Year's Day (statutory), Sat and Sun closed, Mon 4 Jan 3 h (09-12)
    and 1 h (13-14): due Mon 2027-01-04 14:00."""
    assert add_business_time(BUSINESS, at(2026, 12, 31, 14), timedelta(hours=8)) == at(2027, 1, 4, 14)


def test_a_policy_whose_years_no_notice_covers_says_so(tmp_path):
    cal = load_policy(write_policy(tmp_path, "source_years = [2025, 2035]", "source_years = [2027, 2028]")
                      ).calendars["business"]
    assert cal.coverage is None and cal.statutory == (date(2027, 1, 1), date(2028, 12, 31))
    assert not cal.covers(date(2027, 6, 1)) and cal.coverage_of(date(2027, 6, 1)) == "statutory"
    assert cal.holidays == STATUTORY_2027 + STATUTORY_2028


def test_the_engine_warns_at_start_when_this_or_next_year_is_statutory_only():
    policy = load_policy()
    assert coverage_warnings(policy, date(2025, 6, 1)) == []  # 2025 and 2026: published
    late_2026 = coverage_warnings(policy, date(2026, 12, 1))
    assert len(late_2026) == 1 and late_2026[0].startswith("calendar 'business': 2027 has only the statutory")
    assert [w.split(": ")[1][:4] for w in coverage_warnings(policy, date(2027, 3, 1))] == ["2027", "2028"]
    assert "no holidays are known for 2036" in coverage_warnings(policy, date(2035, 6, 1))[1]
    assert calendar_coverage(policy, range(2026, 2028)) == [("business", 2026, "published"),
                                                             ("business", 2027, "statutory")]
