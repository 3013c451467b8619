"""Business calendars: working hours per weekday in a time zone, holidays, make-up working days,
partial closures, or 24x7. Pure arithmetic: no file, no clock, no network.

A calendar is pinned in every case's SLA terms, so it is plain data (dates, "HH:MM-HH:MM" spans,
UTC instants) and the same calendar always gives the same answers.

What is open on a local date of the calendar's zone, in this order of precedence:

1. A **holiday** (`holidays`) closes the whole day, whatever else is said about it.
2. A **make-up working day** (`workdays`, e.g. mainland China's 调休 Saturdays and Sundays) is
   open for `makeup_hours`, which default to Monday's hours: the make-up day is worked as a normal
   weekday, replacing that date's own weekday hours (a Saturday with a short morning shift becomes
   a full day). A date listed both as a holiday and as a make-up day is an error, named.
3. Otherwise the weekday's `hours` apply; a weekday without hours is closed.
4. **Closures** (`closures`, UTC instants, e.g. a timed "office closed 14:00-18:00" event of an
   ICS feed) cut whatever they overlap out of the open spans; they never open anything.

A 24x7 calendar (`always_open`) is open 00:00-24:00 every day; closures still cut it, holidays and
make-up days make no sense on it and are refused.

Wall-clock hours become instants day by day through the zone, so a DST change shortens or
lengthens that day's working time as it really does. Wall times are read as RFC 5545 (3.3.5) reads
them: a time that does not exist (the spring-forward gap) is read with the UTC offset before the
gap (02:30 on Berlin's spring-forward night is 03:30 summer time); a time that occurs twice is its
first occurrence.

`coverage` says for which dates the holiday and make-up lists are known complete (set by the
policy loader from a source such as `holidays_source = "cn"`), `statutory` for which dates only
the statutory public holidays are known (a year no published schedule covers yet); outside both
only the weekly hours, and any dates given by hand, apply: the arithmetic stays total, and
`coverage_of` tells the engine's start-up check and the rule table which years are which.

Arithmetic is fast for any amount: whole weeks that hold no holiday, make-up day, closure or
offset change (with a day's margin) all have the same business time, the weekly amount, and are
skipped in one step; only the irregular weeks are walked day by day. An amount that would end
after LAST_DAY (the year 2399) ends at FOREVER, so every amount has an answer.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FOREVER = datetime.max.replace(tzinfo=UTC)  # the due instant of an amount the calendar cannot hold
# The arithmetic's horizon: an amount still not used up by the end of this day ends at FOREVER (a
# case's instants lie in 1990-2099, and zone rules centuries ahead are guesses anyway).
LAST_DAY = date(2399, 12, 31)
HORIZON = datetime(2400, 1, 2, tzinfo=UTC)  # later than the end of LAST_DAY in any zone
ONE_DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


class Closure(BaseModel):
    """Instants during which the desk is closed even inside working hours: [start, end)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    note: str = ""

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, at: datetime) -> datetime:
        return at.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end <= self.start:
            label = f"closure {self.note!r}" if self.note else "a closure"
            raise ValueError(f"{label} ends ({self.end.isoformat()}) at or before it starts "
                             f"({self.start.isoformat()})")
        return self


class BusinessCalendar(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    timezone: str = "UTC"
    always_open: bool = False  # 24x7
    # weekday -> list of "HH:MM-HH:MM" spans ("24:00" or "00:00" as an end is midnight); missing
    # weekdays are closed
    hours: dict[str, list[str]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)  # closed all day
    workdays: list[date] = Field(default_factory=list)  # make-up working days: open for makeup_hours
    makeup_hours: list[str] | None = None  # None: Monday's hours
    closures: list[Closure] = Field(default_factory=list)
    source: str = ""  # where the holidays and make-up days come from (the policy loader says)
    coverage: tuple[date, date] | None = None  # first and last date the lists are known complete for
    # First and last date for which only the statutory public holidays are known (a year no published
    # schedule covers yet: no make-up working days, no bridged days), e.g. China after chinesecalendar's
    # last year.
    statutory: tuple[date, date] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}") from None
        return tz

    @field_validator("hours")
    @classmethod
    def _spans(cls, hours: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, spans in hours.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(WEEKDAYS)})")
            _check_spans(day, spans)
        return hours

    @field_validator("makeup_hours")
    @classmethod
    def _makeup_spans(cls, spans: list[str] | None) -> list[str] | None:
        if spans is not None:
            _check_spans("makeup_hours", spans)
        return spans

    @field_validator("holidays", "workdays")
    @classmethod
    def _sorted_dates(cls, days: list[date]) -> list[date]:
        return sorted(set(days))

    @field_validator("closures")
    @classmethod
    def _sorted_closures(cls, closures: list[Closure]) -> list[Closure]:
        return sorted(closures, key=lambda c: (c.start, c.end, c.note))

    @model_validator(mode="after")
    def _consistent(self) -> BusinessCalendar:
        if self.always_open:
            if self.holidays or self.workdays or self.makeup_hours is not None:
                raise ValueError(f"calendar {self.name!r} is always_open: holidays, workdays and "
                                 "makeup_hours do not apply (use closures to close a 24x7 desk)")
        elif not any(self.hours.values()):
            raise ValueError(f"calendar {self.name!r} has no working hours and is not always_open")
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"calendar {self.name!r}: {', '.join(map(str, both))} listed both as a "
                             "holiday and as a make-up working day")
        if self.workdays and self.makeup_hours is None and not self.hours.get("mon"):
            raise ValueError(f"calendar {self.name!r} has make-up working days but no Monday hours "
                             "to work them with: give makeup_hours")
        if self.coverage is not None and self.coverage[0] > self.coverage[1]:
            raise ValueError(f"calendar {self.name!r}: coverage {self.coverage[0]} is after {self.coverage[1]}")
        if self.statutory is not None and self.statutory[0] > self.statutory[1]:
            raise ValueError(f"calendar {self.name!r}: statutory {self.statutory[0]} is after {self.statutory[1]}")
        return self

    def open_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The instants (in UTC) the desk is open on a local date of the calendar's zone."""
        return list(self._plan.spans(day))

    def covers(self, day: date) -> bool:
        """Whether the holiday and make-up lists are known complete for this local date (published
        schedules). A calendar without a source of dates has nothing to miss; one with a source
        but no coverage knows no date completely."""
        if self.coverage is None:
            return not self.source
        return self.coverage[0] <= day <= self.coverage[1]

    def coverage_of(self, day: date) -> str:
        """How this calendar knows a date's holidays: "published" (complete), "statutory" (the
        statutory public holidays only) or "weekly hours" (no holidays known at all)."""
        if self.covers(day):
            return "published"
        if self.statutory is not None and self.statutory[0] <= day <= self.statutory[1]:
            return "statutory"
        return "weekly hours"

    @cached_property
    def _plan(self) -> _Plan:
        return _Plan(self)


class _Span(NamedTuple):
    start: time
    end: time
    next_day: bool  # the span ends at midnight, i.e. 00:00 of the following day


class _Plan:
    """A calendar compiled for arithmetic: parsed spans, date sets, merged closures, weekly amount."""

    def __init__(self, cal: BusinessCalendar) -> None:
        self.zone = ZoneInfo(cal.timezone)
        if cal.always_open:
            whole = (_Span(time(0), time(0), True),)
            self.week: tuple[tuple[_Span, ...], ...] = (whole,) * 7
            self.makeup = whole
        else:
            self.week = tuple(_compile(cal.hours.get(d, [])) for d in WEEKDAYS)
            self.makeup = _compile(cal.makeup_hours) if cal.makeup_hours is not None else self.week[0]
        self.holidays = frozenset(cal.holidays)
        self.workdays = frozenset(cal.workdays)
        merged: list[list[datetime]] = []
        for c in cal.closures:  # sorted by start
            if merged and c.start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], c.end)
            else:
                merged.append([c.start, c.end])
        self.closures = [(s, e) for s, e in merged]
        self.closure_ends = [e for _, e in merged]
        special = set(self.holidays) | set(self.workdays)
        for s, e in self.closures:  # every local date a closure touches, with a day's margin
            first = max(s.astimezone(self.zone).date() - ONE_DAY, date.min)
            last = min(e.astimezone(self.zone).date() + ONE_DAY, date.max)
            special.update(first + timedelta(days=i) for i in range((last - first).days + 1))
        self.special = sorted(special)
        self.weekly = sum((_wall_length(s) for day in self.week for s in day), timedelta(0))
        self._days: dict[date, list[tuple[datetime, datetime]]] = {}

    def spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's open spans (shared: not to be changed), computed once per date: the same dates
        recur in every clock of a case and of its neighbours (`business_time_between` walks them)."""
        found = self._days.get(day)
        if found is None:
            if len(self._days) >= 4096:
                self._days.clear()
            found = self._days[day] = self._spans(day)
        return found

    def _spans(self, day: date) -> list[tuple[datetime, datetime]]:
        if day in self.holidays:
            return []
        todays = self.makeup if day in self.workdays else self.week[day.weekday()]
        out = []
        for s in todays:
            open_at = _local(day, s.start, self.zone)
            close_at = _local(day + ONE_DAY if s.next_day else day, s.end, self.zone)
            if close_at > open_at:
                out.extend(self._minus_closures(open_at, close_at) if self.closures else [(open_at, close_at)])
        return out

    def _minus_closures(self, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
        out = []
        i = bisect_right(self.closure_ends, lo)  # the first closure ending after lo
        while i < len(self.closures) and self.closures[i][0] < hi:
            s, e = self.closures[i]
            if s > lo:
                out.append((lo, s))
            lo = max(lo, e)
            i += 1
        if hi > lo:
            out.append((lo, hi))
        return out

    def regular_weeks(self, monday: date, most: int) -> int:
        """How many of the `most` weeks from `monday` on are regular: no holiday, make-up day or
        closure in them and the zone's offset steady through them, each with the weekly amount."""
        most = min(most, (LAST_DAY - monday).days // 7)
        if most <= 0 or self.weekly <= timedelta(0):
            return 0
        horizon = monday + timedelta(days=7 * most)
        i = bisect_left(self.special, monday)
        if i < len(self.special) and self.special[i] < horizon:
            horizon = self.special[i]
        for year in range(monday.year, horizon.year + 1):
            unsteady = _unsteady_days(self.zone.key, year)
            j = bisect_left(unsteady, monday)
            if j < len(unsteady) and unsteady[j] < horizon:
                horizon = unsteady[j]
                break
        return (horizon - monday).days // 7


def _compile(spans: list[str]) -> tuple[_Span, ...]:
    out = []
    for span in spans:
        start, end = _parse_span(span)
        out.append(_Span(start, end, end == time(0)))
    return tuple(sorted(out))


def _wall_length(s: _Span) -> timedelta:
    end = datetime.combine(date(2000, 1, 2) if s.next_day else date(2000, 1, 1), s.end)
    return end - datetime.combine(date(2000, 1, 1), s.start)


def _check_spans(label: str, spans: list[str]) -> None:
    parsed = []
    for span in spans:
        start, end = _parse_span(span)
        if start >= end and end != time(0):
            raise ValueError(f"{label}: span {span!r} ends before it starts")
        parsed.append((start, time.max if end == time(0) else end, span))
    parsed.sort()
    for (_, end, first), (start, _, second) in zip(parsed, parsed[1:]):
        if start < end:
            raise ValueError(f"{label}: spans {first!r} and {second!r} overlap")


def _parse_span(span: str) -> tuple[time, time]:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", span.strip())
    if not m:
        raise ValueError(f"working hours {span!r} are not HH:MM-HH:MM")
    h1, m1, h2, m2 = map(int, m.groups())
    if h2 == 24 and m2 == 0:
        h2 = 0
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"working hours {span!r} are not times of day")
    return time(h1, m1), time(h2, m2)


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    # As a UTC instant: Python subtracts datetimes sharing a tzinfo by wall clock, which is wrong
    # across a DST change; UTC arithmetic is not. fold=0: a gap time is read with the offset before
    # the gap, an ambiguous time is its first occurrence (RFC 5545, 3.3.5).
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@lru_cache(maxsize=4096)
def _unsteady_days(zone_key: str, year: int) -> list[date]:
    """The local dates of `year` whose offset at midnight differs from the next midnight's, with
    the day before and after: weeks holding one are walked day by day."""
    zone = ZoneInfo(zone_key)
    first = date(year, 1, 1)
    days = [first + timedelta(days=i) for i in range(-1, (date(year + 1, 1, 1) - first).days + 1)]
    offsets = [datetime.combine(d, time(0), tzinfo=zone).utcoffset() for d in days]
    out: set[date] = set()
    for k in range(len(days) - 1):
        if offsets[k] != offsets[k + 1]:
            out.update(days[k] + timedelta(days=i) for i in (-1, 0, 1))
    return sorted(d for d in out if d.year == year)


def add_business_time(cal: BusinessCalendar, start: datetime, amount: timedelta) -> datetime:
    """The instant when `amount` of business time has passed after `start`."""
    start = start.astimezone(UTC)
    if amount <= timedelta(0):
        return start
    if start >= HORIZON or amount > HORIZON - start:  # more than all the time left, open or not
        return FOREVER
    plan = cal._plan
    remaining = amount
    first = start.astimezone(plan.zone).date()
    day = first - ONE_DAY
    while day <= LAST_DAY:
        if day.weekday() == 0 and day > first:  # a whole week after start: skip it if regular
            weeks = plan.regular_weeks(day, (remaining - TICK) // plan.weekly if plan.weekly else 0)
            day += timedelta(days=7 * weeks)
            remaining -= plan.weekly * weeks
        for open_at, close_at in plan.spans(day):
            begin = max(open_at, start)
            if begin >= close_at:
                continue
            available = close_at - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += ONE_DAY
    return FOREVER


def business_time_between(cal: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Business time in [start, end)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return timedelta(0)
    plan = cal._plan
    total = timedelta(0)
    first = start.astimezone(plan.zone).date()
    last = min(end.astimezone(plan.zone).date(), LAST_DAY)
    day = first - ONE_DAY
    while day <= last:
        if day.weekday() == 0 and day > first:  # whole weeks between start and end's day
            weeks = plan.regular_weeks(day, (last - day).days // 7)
            day += timedelta(days=7 * weeks)
            total += plan.weekly * weeks
            if day > last:
                break
        for open_at, close_at in plan.spans(day):
            lo, hi = max(open_at, start), min(close_at, end)
            if hi > lo:
                total += hi - lo
        day += ONE_DAY
    return total
