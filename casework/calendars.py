"""Where a business calendar's dates come from, read when the policy loads (never when a case is
decided): mainland China's public holidays and make-up working days, and iCalendar files.

The parsing lives here rather than in domain/: the domain runs inside the workflow sandbox and is
kept to plain data and arithmetic, so the third-party parsers (icalendar, recurring-ical-events,
chinesecalendar) stay on the loading side. What comes out is plain data (dates and UTC closures)
that domain.calendar.BusinessCalendar validates and pins on each case.

ICS rules (`holidays_ics`, `workdays_ics` in a policy's calendar):
- every VEVENT is expanded with its RRULE, RDATE and EXDATE (and RECURRENCE-ID overrides) within
  the calendar's `source_years`; without `source_years`, every occurrence, and a rule without
  UNTIL or COUNT is then an error (it never ends);
- an occurrence with STATUS:CANCELLED is ignored; TENTATIVE and CONFIRMED ones count;
- an all-day occurrence (DTSTART;VALUE=DATE) makes each of its dates a holiday (or, in
  `workdays_ics`, a make-up working day);
- a timed occurrence is a partial closure from its start to its end, as UTC instants: TZID (or
  UTC "Z") is honoured, a floating time is read in the calendar's own zone. A timed event has no
  place in `workdays_ics` (a make-up day is a whole day) and is an error there;
- TRANSP is not consulted: public-holiday feeds mark their all-day events TRANSPARENT (they do not
  make a person busy), yet for a desk every event of a closure feed is a closure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import version
from itertools import islice
from zoneinfo import ZoneInfo

MAX_OCCURRENCES = 100_000  # of one ICS file: more is a runaway rule, not a calendar
CN = "cn"
SOURCES = (CN,)
STATUTORY_FROM = 1950  # holidays.China starts with the People's Republic's first holiday rules


class CalendarSourceError(ValueError):
    pass


@dataclass
class SourceDays:
    holidays: list[date] = field(default_factory=list)
    workdays: list[date] = field(default_factory=list)
    closures: list[dict] = field(default_factory=list)  # {"start", "end", "note"}, UTC instants


def china_years() -> tuple[int, int]:
    """The years the installed chinesecalendar package knows (1.11.0: 2004-2026)."""
    from chinese_calendar import constants

    known = [*constants.holidays, *constants.workdays]
    return min(known).year, max(known).year


@dataclass
class ChinaDays:
    days: SourceDays
    published: tuple[date, date] | None  # the dates the State Council's notices are known for
    statutory: tuple[date, date] | None  # the dates only the statutory holidays are known for
    source: str


def china_days(years: tuple[int, int] | None) -> ChinaDays:
    """Mainland China's public holidays and make-up working days (调休) for the years.

    Where the State Council's yearly notices are published (as the chinesecalendar package records
    them), their holidays and make-up days. For years the package does not know, the statutory
    public holidays of the national holiday measures (全国年节及纪念日放假办法, as revised in 2024:
    New Year's Day, Spring Festival's eve and first three days, Qingming, 1-2 May, Dragon Boat,
    Mid-autumn, 1-3 October, with a holiday falling on a weekend given on the next working day, its
    Art. 6) as the `holidays` package computes them: no make-up working days and no bridged days,
    which only the yearly notice sets. Which years are which is kept on the calendar, so the gap
    shows (BusinessCalendar.covers, the engine's start-up warning, the rule table).
    """
    from chinese_calendar import constants

    low, high = china_years()
    first, last = years or (low, high)
    statutory_years = [y for y in range(first, last + 1) if not low <= y <= high]
    if statutory_years and statutory_years[0] < STATUTORY_FROM:
        raise CalendarSourceError(f"chinesecalendar {version('chinesecalendar')} knows {low}-{high} and "
                                  f"the statutory holidays are known from {STATUTORY_FROM}, not {first}")
    days = SourceDays(holidays=sorted(d for d in constants.holidays if first <= d.year <= last),
                      workdays=sorted(d for d in constants.workdays if first <= d.year <= last))
    published_years = (max(first, low), min(last, high))
    published = (date(published_years[0], 1, 1), date(published_years[1], 12, 31)) \
        if published_years[0] <= published_years[1] else None
    described = [f"chinesecalendar {version('chinesecalendar')} ({CN}, "
                 f"{_year_ranges(list(range(published_years[0], published_years[1] + 1)))[0]})"] if published else []
    statutory = None
    if statutory_years:
        import holidays

        found = holidays.China(years=statutory_years)
        days.holidays = sorted({*days.holidays, *found})
        statutory = (date(statutory_years[0], 1, 1), date(statutory_years[-1], 12, 31))
        described.append(f"statutory holidays only, from holidays {version('holidays')} "
                         f"({', '.join(_year_ranges(statutory_years))})")
    return ChinaDays(days=days, published=published, statutory=statutory, source="; ".join(described))


def _year_ranges(years: list[int]) -> list[str]:
    out: list[list[int]] = []
    for y in years:
        if out and out[-1][1] == y - 1:
            out[-1][1] = y
        else:
            out.append([y, y])
    return [f"{a}-{b}" if a != b else str(a) for a, b in out]


def ics_days(text: str, zone: ZoneInfo, years: tuple[int, int] | None, *, workdays: bool = False) -> SourceDays:
    """The holidays (or make-up days) and closures an iCalendar text describes."""
    import icalendar
    import recurring_ical_events

    try:
        cal = icalendar.Calendar.from_ical(text)
    except ValueError as err:
        raise CalendarSourceError(f"not an iCalendar file: {err}") from None
    if years is None:
        endless = [str(ev.get("SUMMARY", ev.get("UID", "?"))) for ev in cal.walk("VEVENT")
                   if (rule := ev.get("RRULE")) is not None
                   and not any(r.get("UNTIL") or r.get("COUNT") for r in (rule if isinstance(rule, list) else [rule]))]
        if endless:
            raise CalendarSourceError(f"event {endless[0]!r} recurs without end (RRULE without UNTIL or "
                                      "COUNT): give the calendar source_years = [first, last]")
    try:
        expanded = recurring_ical_events.of(cal)
        found = (expanded.all() if years is None
                 else expanded.between(date(years[0], 1, 1), date(years[1] + 1, 1, 1)))
        occurrences = list(islice(found, MAX_OCCURRENCES + 1))
    except Exception as err:  # the library's errors for malformed rules have no common base
        raise CalendarSourceError(f"cannot expand its events: {err}") from None
    if len(occurrences) > MAX_OCCURRENCES:
        raise CalendarSourceError(f"more than {MAX_OCCURRENCES} occurrences: narrow source_years")
    out = SourceDays()
    for ev in occurrences:
        if str(ev.get("STATUS", "")).upper() == "CANCELLED":
            continue
        summary = str(ev.get("SUMMARY", ""))
        start, end = ev.start, ev.end
        if not isinstance(start, datetime):  # all-day: each date in [start, end)
            end = end if isinstance(end, date) and not isinstance(end, datetime) and end > start \
                else start + timedelta(days=1)
            dates = [start + timedelta(days=i) for i in range((end - start).days)]
            (out.workdays if workdays else out.holidays).extend(dates)
            continue
        if workdays:
            raise CalendarSourceError(f"event {summary!r} at {start.isoformat()} is timed: a make-up "
                                      "working day is an all-day event")
        if not isinstance(end, datetime):
            end = datetime.combine(end, datetime.min.time())
        start, end = (_utc(t, zone) for t in (start, end))
        if end > start:  # a timed event without duration closes nothing
            out.closures.append({"start": start, "end": end, "note": summary})
    out.holidays, out.workdays = sorted(set(out.holidays)), sorted(set(out.workdays))
    out.closures.sort(key=lambda c: (c["start"], c["end"], c["note"]))
    return out


def _utc(t: datetime, zone: ZoneInfo) -> datetime:
    return (t if t.tzinfo is not None else t.replace(tzinfo=zone)).astimezone(UTC)
