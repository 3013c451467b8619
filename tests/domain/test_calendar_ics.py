"""ICS import: recurrence (RRULE, EXDATE, RECURRENCE-ID), cancelled events, all-day holidays,
timed events as partial closures in their own zone, and errors that name the calendar entry.
Expected instants are worked out by hand (Berlin: CET = UTC+1 until 29 Mar 2026, CEST = UTC+2
from then to 25 Oct, CET again after)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from casework import calendars
from casework.calendars import ics_days
from casework.policy import DEFAULT_POLICY, PolicyError, load_policy
from domain.calendar import add_business_time, business_time_between

BERLIN = ZoneInfo("Europe/Berlin")

FEED = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//casework tests//EN
BEGIN:VEVENT
UID:team-meeting
SUMMARY:Desk closed: team meeting
DTSTART;TZID=Europe/Berlin:20260302T140000
DTEND;TZID=Europe/Berlin:20260302T160000
RRULE:FREQ=WEEKLY;BYDAY=MO
EXDATE;TZID=Europe/Berlin:20260309T140000
END:VEVENT
BEGIN:VEVENT
UID:team-meeting
RECURRENCE-ID;TZID=Europe/Berlin:20260316T140000
DTSTART;TZID=Europe/Berlin:20260316T140000
DTEND;TZID=Europe/Berlin:20260316T160000
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:good-friday
SUMMARY:Karfreitag
DTSTART;VALUE=DATE:20260403
DTEND;VALUE=DATE:20260404
TRANSP:TRANSPARENT
END:VEVENT
BEGIN:VEVENT
UID:easter-monday
SUMMARY:Ostermontag (withdrawn)
DTSTART;VALUE=DATE:20260406
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:unity-day
SUMMARY:Tag der Deutschen Einheit
DTSTART;VALUE=DATE:20201003
RRULE:FREQ=YEARLY
END:VEVENT
BEGIN:VEVENT
UID:christmas
SUMMARY:Christmas
DTSTART;VALUE=DATE:20261224
DURATION:P2D
END:VEVENT
BEGIN:VEVENT
UID:floating
SUMMARY:Fire drill (floating time: the calendar's zone)
DTSTART:20260311T090000
DTEND:20260311T100000
END:VEVENT
BEGIN:VEVENT
UID:new-york
SUMMARY:Closed for the New York call
DTSTART;TZID=America/New_York:20260312T040000
DTEND;TZID=America/New_York:20260312T060000
END:VEVENT
BEGIN:VEVENT
UID:utc
SUMMARY:Network maintenance
DTSTART:20260313T120000Z
DTEND:20260313T130000Z
END:VEVENT
END:VCALENDAR
"""

BERLIN_TABLE = """
[calendars.berlin]
timezone = "Europe/Berlin"
hours = { mon = ["09:00-17:00"], tue = ["09:00-17:00"], wed = ["09:00-17:00"], thu = ["09:00-17:00"], fri = ["09:00-17:00"] }
"""


def policy_with(tmp_path, table: str, **files: str):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    policy = tmp_path / "policy.toml"
    policy.write_text(DEFAULT_POLICY.read_text() + BERLIN_TABLE + table)
    return policy


@pytest.fixture
def berlin(tmp_path):
    path = policy_with(tmp_path, 'holidays_ics = "berlin.ics"\nsource_years = [2026, 2026]\n', **{"berlin.ics": FEED})
    return load_policy(path).calendars["berlin"]


def b(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN)


def u(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def test_all_day_events_are_holidays_cancelled_ones_are_not(berlin):
    # Good Friday (TRANSPARENT still counts), 3 Oct from the yearly rule (2026 only: source_years),
    # Christmas Eve and Day from DURATION:P2D; Easter Monday is cancelled.
    assert berlin.holidays == [date(2026, 4, 3), date(2026, 10, 3), date(2026, 12, 24), date(2026, 12, 25)]
    assert berlin.coverage == (date(2026, 1, 1), date(2026, 12, 31))
    assert berlin.source == "berlin.ics (holidays_ics, 2026-2026)"


def test_timed_events_are_closures_in_utc(berlin):
    closures = [(c.start, c.end) for c in berlin.closures]
    # Mondays 2 Mar .. 28 Dec 2026 are 44; 9 Mar is an EXDATE and 16 Mar a cancelled occurrence.
    mondays = [c for c in berlin.closures if c.note == "Desk closed: team meeting"]
    assert len(mondays) == 42
    assert (u(2026, 3, 2, 13), u(2026, 3, 2, 15)) in closures  # 14:00 CET
    assert (u(2026, 3, 30, 12), u(2026, 3, 30, 14)) in closures  # 14:00 CEST
    assert (u(2026, 11, 2, 13), u(2026, 11, 2, 15)) in closures  # CET again
    assert not any(s.date() in (date(2026, 3, 9), date(2026, 3, 16)) for s, _ in closures)
    assert (u(2026, 3, 11, 8), u(2026, 3, 11, 9)) in closures  # floating 09:00 read in Berlin (CET)
    assert (u(2026, 3, 12, 8), u(2026, 3, 12, 10)) in closures  # 04:00 EDT (New York changed on 8 Mar)
    assert (u(2026, 3, 13, 12), u(2026, 3, 13, 13)) in closures
    assert len(closures) == 45


@pytest.mark.parametrize("start,hours,due", [
    (b(2026, 3, 2, 13), 2, b(2026, 3, 2, 17)),  # 13-14, closed 14-16, 16-17
    (b(2026, 3, 9, 13), 2, b(2026, 3, 9, 15)),  # the EXDATE: no closure
    (b(2026, 3, 16, 13), 2, b(2026, 3, 16, 15)),  # the cancelled occurrence: no closure
    (b(2026, 3, 30, 13), 2, b(2026, 3, 30, 17)),  # after the DST change, still 14-16 local
    (b(2026, 4, 2, 16), 2, b(2026, 4, 6, 10)),  # Thu 16-17, Good Friday, weekend, Easter Monday 9-10
    (b(2026, 12, 23, 16), 2, b(2026, 12, 28, 10)),  # Wed 16-17, 24-25 Dec off, weekend, Mon 9-10
])
def test_deadlines_honour_the_feed(berlin, start, hours, due):
    assert add_business_time(berlin, start, timedelta(hours=hours)) == due


@pytest.mark.parametrize("day,hours", [
    (date(2026, 3, 11), 7),  # the floating fire drill
    (date(2026, 3, 12), 6),  # 09:00-11:00 Berlin for the New York call
    (date(2026, 3, 13), 7),  # 13:00-14:00 Berlin, given in UTC
    (date(2026, 4, 3), 0),  # Good Friday
    (date(2026, 4, 6), 6),  # Easter Monday was withdrawn, the Monday meeting is not
])
def test_a_days_business_time(berlin, day, hours):
    start = b(day.year, day.month, day.day)
    assert business_time_between(berlin, start, start + timedelta(days=1)) == timedelta(hours=hours)


def test_an_endless_rule_needs_source_years(tmp_path):
    path = policy_with(tmp_path, 'holidays_ics = "berlin.ics"\n', **{"berlin.ics": FEED})
    with pytest.raises(PolicyError, match=r"calendars\.berlin\.holidays_ics .*recurs without end"):
        load_policy(path)


def test_bounded_rules_expand_without_source_years():
    text = ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nDTSTART;VALUE=DATE:20260105\n"
            "RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE;VALUE=DATE:20260112\nRDATE;VALUE=DATE:20260301\n"
            "END:VEVENT\nEND:VCALENDAR\n")
    assert ics_days(text, BERLIN, None).holidays == [date(2026, 1, 5), date(2026, 1, 19), date(2026, 3, 1)]


def test_make_up_days_from_an_ics_file(tmp_path):
    feed = ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:m\nSUMMARY:Make-up Saturday\nDTSTART;VALUE=DATE:20260307\n"
            "END:VEVENT\nEND:VCALENDAR\n")
    cal = load_policy(policy_with(tmp_path, 'workdays_ics = "makeup.ics"\n', **{"makeup.ics": feed})
                      ).calendars["berlin"]
    assert cal.workdays == [date(2026, 3, 7)]
    assert cal.open_spans(date(2026, 3, 7)) == [(u(2026, 3, 7, 8), u(2026, 3, 7, 16))]  # Monday's 9-17 CET


@pytest.mark.parametrize("table,files,named", [
    ('workdays_ics = "w.ics"\nsource_years = [2026, 2026]\n', {"w.ics": FEED}, r"calendars\.berlin\.workdays_ics .*is timed"),
    ('holidays_ics = "h.ics"\n', {"h.ics": "this is not a calendar"}, r"calendars\.berlin\.holidays_ics .*not an iCalendar"),
    ('holidays_ics = "missing.ics"\n', {}, r"calendars\.berlin\.holidays_ics .*missing\.ics"),
    ('source_years = [2026, 2026]\n', {}, r"calendars\.berlin\.source_years: no holidays_source"),
    ('source_years = [2027, 2026]\nholidays_ics = "h.ics"\n', {"h.ics": FEED}, r"calendars\.berlin\.source_years"),
])
def test_a_bad_ics_entry_is_named(tmp_path, table, files, named):
    with pytest.raises(PolicyError, match=named):
        load_policy(policy_with(tmp_path, table, **files))


def test_a_runaway_rule_is_refused(monkeypatch):
    monkeypatch.setattr(calendars, "MAX_OCCURRENCES", 10)
    text = ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nDTSTART:20260105T090000Z\nDTEND:20260105T091000Z\n"
            "RRULE:FREQ=HOURLY;COUNT=11\nEND:VEVENT\nEND:VCALENDAR\n")
    with pytest.raises(calendars.CalendarSourceError, match="more than 10 occurrences"):
        ics_days(text, BERLIN, None)


def test_closures_can_be_written_by_hand_and_need_a_zone(tmp_path):
    table = 'closures = [{ start = 2026-03-04T14:00:00+01:00, end = 2026-03-04T18:00:00+01:00, note = "move" }]\n'
    cal = load_policy(policy_with(tmp_path, table)).calendars["berlin"]
    assert business_time_between(cal, b(2026, 3, 4), b(2026, 3, 5)) == timedelta(hours=5)
    with pytest.raises(PolicyError, match=r"calendars\.berlin\.closures\.0\.start"):
        load_policy(policy_with(tmp_path, table.replace("14:00:00+01:00", "14:00:00")))
