"""Business calendars: working hours per weekday in a time zone, holidays, or 24x7. Pure arithmetic.

Deadlines count business time only. Local wall-clock hours are turned into instants day by day
through the zone, so a DST change shortens or lengthens that day's working time as it really does.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3 * 366  # a target that needs more calendar days than this is a policy error


class BusinessCalendar(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "default"
    timezone: str = "UTC"
    always_open: bool = False  # 24x7
    # weekday -> list of "HH:MM-HH:MM" spans; missing weekdays are closed
    hours: dict[str, list[str]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)

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
            for span in spans:
                start, end = _parse_span(span)
                if start >= end and end != time(0):
                    raise ValueError(f"{day}: span {span!r} ends before it starts")
        return hours

    @model_validator(mode="after")
    def _open_sometime(self) -> BusinessCalendar:
        if not self.always_open and not any(self.hours.values()):
            raise ValueError(f"calendar {self.name!r} has no working hours and is not always_open")
        return self

    def open_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The instants (in UTC) the desk is open on a local date of the calendar's zone."""
        zone = ZoneInfo(self.timezone)
        if self.always_open:
            return [(_local(day, time(0), zone), _local(day + timedelta(days=1), time(0), zone))]
        if day in self._holiday_set:
            return []
        spans = []
        for span in self.hours.get(WEEKDAYS[day.weekday()], []):
            start, end = _parse_span(span)
            end_day = day + timedelta(days=1) if end == time(0) else day
            spans.append((_local(day, start, zone), _local(end_day, end, zone)))
        return spans

    @property
    def _holiday_set(self) -> frozenset[date]:
        return frozenset(self.holidays)


def _parse_span(span: str) -> tuple[time, time]:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})", span.strip())
    if not m:
        raise ValueError(f"working hours {span!r} are not HH:MM-HH:MM")
    h1, m1, h2, m2 = map(int, m.groups())
    if h2 == 24 and m2 == 0:
        h2 = 0
    return time(h1, m1), time(h2, m2)


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    # As a UTC instant: Python subtracts datetimes sharing a tzinfo by wall clock, which is wrong
    # across a DST change; UTC arithmetic is not. A wall time in a DST gap lands on a real instant.
    return datetime.fromtimestamp(datetime.combine(day, at).replace(tzinfo=zone).timestamp(), UTC)


def add_business_time(cal: BusinessCalendar, start: datetime, amount: timedelta) -> datetime:
    """The instant when `amount` of business time has passed after `start`."""
    start = start.astimezone(UTC)
    if amount <= timedelta(0):
        return start
    remaining = amount
    day = start.astimezone(ZoneInfo(cal.timezone)).date() - timedelta(days=1)
    for _ in range(MAX_DAYS):
        for open_at, close_at in cal.open_spans(day):
            begin = max(open_at, start)
            if begin >= close_at:
                continue
            available = close_at - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += timedelta(days=1)
    raise ValueError(f"{amount} of business time does not fit in {MAX_DAYS} days of calendar {cal.name!r}")


def business_time_between(cal: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Business time in [start, end)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return timedelta(0)
    total = timedelta(0)
    zone = ZoneInfo(cal.timezone)
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        for open_at, close_at in cal.open_spans(day):
            lo, hi = max(open_at, start), min(close_at, end)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


def holidays_from_ics(text: str) -> list[date]:
    """All-day dates of the VEVENTs in an iCalendar file (public-holiday feeds are written this way)."""
    found: list[date] = []
    for block in re.findall(r"BEGIN:VEVENT(.*?)END:VEVENT", text.replace("\r\n ", ""), re.S):
        start = re.search(r"^DTSTART[^:\n]*:(\d{8})", block, re.M)
        if not start:
            continue
        first = datetime.strptime(start.group(1), "%Y%m%d").date()
        end = re.search(r"^DTEND[^:\n]*:(\d{8})", block, re.M)
        last = datetime.strptime(end.group(1), "%Y%m%d").date() if end else first + timedelta(days=1)
        found += [first + timedelta(days=i) for i in range(max((last - first).days, 1))]
    return sorted(set(found))
