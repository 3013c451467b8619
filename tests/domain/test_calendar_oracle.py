"""domain.calendar against a naive oracle written here, sharing no code with it: the oracle walks
minute by minute and asks, for each minute, whether the desk is open at its start (the calendar
page's rules, read afresh: holiday > make-up day > weekday hours, closures cut; wall times through
the zone, a gap time read with the offset before the gap, a repeated one its first occurrence).
Working hours are whole minutes and offsets change on whole hours, so a minute is open or closed
throughout. Hypothesis draws calendars, start minutes and small amounts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from casework.calendars import china_days
from domain.calendar import BusinessCalendar, add_business_time, business_time_between

MINUTE = timedelta(minutes=1)
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CN_DAYS = china_days((2025, 2026)).days
WEEK_9_TO_5 = {d: ["09:00-17:00"] for d in DAY_NAMES[:5]}


def z(y, mo, d, h, mi, zone):
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(zone)).astimezone(UTC)


SPECS = {
    # The shipped setting: Shanghai, lunch break, China's 2025-2026 holidays and make-up days, plus
    # closures (one across the lunch break of the make-up Saturday before Spring Festival).
    "cn": dict(timezone="Asia/Shanghai",
               hours={d: ["09:00-12:00", "13:00-18:00"] for d in DAY_NAMES[:5]},
               holidays=CN_DAYS.holidays, workdays=CN_DAYS.workdays,
               closures=[(z(2026, 2, 10, 14, 0, "Asia/Shanghai"), z(2026, 2, 10, 16, 30, "Asia/Shanghai")),
                         (z(2026, 2, 14, 11, 0, "Asia/Shanghai"), z(2026, 2, 14, 13, 30, "Asia/Shanghai")),
                         (z(2026, 3, 18, 10, 0, "Asia/Shanghai"), z(2026, 3, 18, 11, 0, "Asia/Shanghai"))]),
    # New York: a Sunday span across both changes (02:00 is skipped on 8 Mar, 01:00-02:00 repeats
    # on 1 Nov), a Saturday evening to midnight, a holiday, a make-up Saturday with its own hours.
    "ny": dict(timezone="America/New_York",
               hours={**WEEK_9_TO_5, "sat": ["22:00-24:00"], "sun": ["01:00-03:30"]},
               holidays=[date(2026, 3, 9), date(2026, 11, 3)], workdays=[date(2026, 3, 14)],
               makeup_hours=["10:00-12:00"],
               closures=[(z(2026, 3, 10, 15, 0, "UTC"), z(2026, 3, 10, 16, 0, "UTC")),
                         (z(2026, 11, 1, 1, 30, "America/New_York"), z(2026, 11, 2, 10, 0, "America/New_York"))]),
    # Berlin 24x7 with closures on the nights of the changes.
    "berlin_24x7": dict(timezone="Europe/Berlin", always_open=True,
                        closures=[(z(2026, 3, 29, 0, 30, "UTC"), z(2026, 3, 29, 2, 30, "UTC")),
                                  (z(2026, 10, 25, 0, 0, "UTC"), z(2026, 10, 25, 1, 40, "UTC"))]),
    # Sparse: 3 wall-clock hours a week, so small amounts cross many whole weeks (and both changes).
    # A closure inside a wholly regular week and one over several weeks.
    "berlin_sparse": dict(timezone="Europe/Berlin", hours={"wed": ["23:00-24:00"], "sun": ["01:30-03:30"]},
                          closures=[(z(2026, 6, 17, 23, 15, "Europe/Berlin"), z(2026, 6, 17, 23, 45, "Europe/Berlin")),
                                    (z(2026, 7, 1, 0, 0, "Europe/Berlin"), z(2026, 7, 20, 0, 0, "Europe/Berlin"))]),
}
WINDOWS = {  # where starts are drawn: (first instant, days)
    "cn": (datetime(2026, 1, 20, tzinfo=UTC), 70),
    "ny": (datetime(2026, 3, 1, tzinfo=UTC), 20),
    "berlin_24x7": (datetime(2026, 3, 27, tzinfo=UTC), 4),
    "berlin_sparse": (datetime(2026, 2, 15, tzinfo=UTC), 270),
}
MAX_MINUTES = {"cn": 3000, "ny": 3000, "berlin_24x7": 3000, "berlin_sparse": 720}
WINDOWS["berlin_24x7_autumn"] = (datetime(2026, 10, 23, tzinfo=UTC), 4)
SPECS["berlin_24x7_autumn"], MAX_MINUTES["berlin_24x7_autumn"] = SPECS["berlin_24x7"], 3000


def domain_calendar(name: str) -> BusinessCalendar:
    spec = dict(SPECS[name])
    spec["closures"] = [{"start": a, "end": b} for a, b in spec.get("closures", [])]
    return BusinessCalendar(name=name, **spec)


CALENDARS = {name: domain_calendar(name) for name in SPECS}


class Oracle:
    def __init__(self, spec: dict) -> None:
        self.zone = ZoneInfo(spec["timezone"])
        self.always = spec.get("always_open", False)
        self.hours = spec.get("hours", {})
        self.holidays = set(spec.get("holidays", []))
        self.workdays = set(spec.get("workdays", []))
        self.makeup = spec.get("makeup_hours") or self.hours.get("mon", [])
        self.closures = spec.get("closures", [])
        self.day_spans = lru_cache(maxsize=None)(self._day_spans)

    def wall(self, day: date, hh_mm: str) -> datetime:
        hh, mm = (int(x) for x in hh_mm.split(":"))
        if hh == 24:
            day, hh = day + timedelta(days=1), 0
        naive = datetime(day.year, day.month, day.day, hh, mm)
        return (naive - self.zone.utcoffset(naive)).replace(tzinfo=UTC)  # fold=0 (PEP 495)

    def _day_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        if self.always:
            texts = ["00:00-24:00"]
        elif day in self.holidays:
            texts = []
        elif day in self.workdays:
            texts = self.makeup
        else:
            texts = self.hours.get(DAY_NAMES[day.weekday()], [])
        out = []
        for text in texts:
            a, b = text.split("-")
            out.append((self.wall(day, a), self.wall(day, "24:00" if b == "00:00" else b)))
        return out

    def is_open(self, t: datetime) -> bool:
        if any(a <= t < b for a, b in self.closures):
            return False
        local_day = t.astimezone(self.zone).date()
        return any(a <= t < b for d in (local_day - timedelta(days=1), local_day) for a, b in self.day_spans(d))

    def add(self, start: datetime, minutes: int) -> datetime:
        t, counted = start, 0
        while True:
            if self.is_open(t):
                counted += 1
                if counted == minutes:
                    return t + MINUTE
            t += MINUTE

    def between(self, start: datetime, end: datetime) -> timedelta:
        n, t = 0, start
        while t < end:
            n += self.is_open(t)
            t += MINUTE
        return n * MINUTE


ORACLES = {name: Oracle(spec) for name, spec in SPECS.items()}


@st.composite
def cases(draw):
    name = draw(st.sampled_from(sorted(SPECS)))
    first, days = WINDOWS[name]
    start = first + draw(st.integers(0, days * 24 * 60 - 1)) * MINUTE
    return name, start, draw(st.integers(1, MAX_MINUTES[name]))


@settings(max_examples=120, deadline=None)
@given(case=cases())
def test_add_business_time_agrees_with_the_minute_walk(case):
    name, start, minutes = case
    assert add_business_time(CALENDARS[name], start, minutes * MINUTE) == ORACLES[name].add(start, minutes)


@settings(max_examples=80, deadline=None)
@given(case=cases(), span=st.integers(0, 14 * 24 * 60))
def test_business_time_between_agrees_with_the_minute_walk(case, span):
    name, start, _ = case
    end = start + span * MINUTE
    assert business_time_between(CALENDARS[name], start, end) == ORACLES[name].between(start, end)


def test_the_oracle_itself_on_hand_computed_days():
    ny, sparse = ORACLES["ny"], ORACLES["berlin_sparse"]
    # Sun 8 Mar 2026, New York: 01:00 EST (06:00 UTC) to 03:30 EDT (07:30 UTC): 1.5 h.
    assert ny.between(datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 8, 12, tzinfo=UTC)) == timedelta(hours=1.5)
    # Sun 29 Mar 2026, Berlin: 01:30 CET (00:30 UTC); 02:00-03:00 does not exist; to 03:30 CEST (01:30 UTC).
    assert sparse.between(datetime(2026, 3, 29, tzinfo=UTC), datetime(2026, 3, 29, 6, tzinfo=UTC)) == timedelta(hours=1)
    # Sun 25 Oct 2026, Berlin: 01:30 CEST (23:30 UTC on the 24th) to 03:30 CET (02:30 UTC): 3 h.
    assert sparse.between(datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 6, tzinfo=UTC)) == timedelta(hours=3)
