"""A second, deliberately naive SLA evaluator, written from docs/sla.md alone.

It shares no code with the engine: no calendar arithmetic, no clock rules, no state model. It reads
the commands a case accepted (in order, each with its instant) and walks the time between them
minute by minute over its own tiny calendar (weekly working hours, holidays, make-up working days,
closures, a time zone), counting each running clock's business time, and writes down the instant
each warning, breach, met and cancellation happens. `tests/domain/test_sla_oracle.py` compares
that with what `decide` records.

Deliberately slow and simple:

- Time is integer seconds since the epoch (UTC). The walk visits every minute between two
  commands; a minute counts, whole or in part, when the calendar is open at its start (working
  hours are whole minutes and zone offsets change on whole hours, so a minute is open or closed
  throughout).
- A threshold (a warning share of the target, or the target itself) falls due at the instant the
  clock's used business time reaches it: inside a minute, at the exact second.
- docs/sla.md "Time is ordered per case": facts that fall due at an instant at which commands are
  given come after those commands (a response exactly at the due instant meets the clock in time);
  a `check_deadlines` records everything due at or before its instant.
- A threshold a clock has already gone past when it starts running again (a resumed or retargeted
  clock: used business time strictly more than the threshold) happens at once, at that instant, as
  part of the command that resumed or retargeted it, so a response at the same instant is late
  (docs/sla.md, "Retargeting"); a threshold reached exactly is left to the rule above. Each warning
  share and the breach happen once per clock cycle.
- A new agreed reply time while one is running cancels the running one (docs/sla.md, agreed_reply).
- A warning share a clock reaches exactly at the instant it pauses happens at that instant.

The only things taken from the engine are its vocabulary: command kinds and the fields of a
calendar (zone, weekly hours, holidays, make-up days and their hours, closures).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AGREED = "agreed_reply"
POLICY_CLOCKS = ("first_response", "next_response", "resolution")


def seconds(at: datetime) -> int:
    """An aware instant as whole seconds since the epoch (the oracle's time)."""
    assert at.tzinfo is not None
    delta = at - EPOCH
    assert delta.microseconds == 0, f"the oracle works in whole seconds: {at}"
    return delta.days * 86400 + delta.seconds


def instant(s: int | Fraction) -> datetime:
    micro = Fraction(s) * 1_000_000
    assert micro.denominator == 1, f"an instant finer than a microsecond: {s}"
    return EPOCH + timedelta(microseconds=int(micro))


def _exact(amount: Fraction) -> int | Fraction:
    return int(amount) if amount.denominator == 1 else amount


class Calendar:
    """Open or closed, minute by minute. Wall-clock spans become instants through the zone the
    way the calendar page says: a wall time in a spring-forward gap is read with the offset before
    the gap, a repeated wall time is its first occurrence."""

    def __init__(self, *, timezone: str, always_open: bool = False, hours: dict | None = None,
                 holidays=(), workdays=(), makeup_hours: list[str] | None = None,
                 closures: list[tuple[datetime, datetime]] = ()) -> None:
        self.zone = ZoneInfo(timezone)
        self.always_open = always_open
        self.hours = {d: list(spans) for d, spans in (hours or {}).items()}
        self.holidays = set(holidays)
        self.workdays = set(workdays)
        self.makeup_hours = makeup_hours
        self.closures = [(seconds(a), seconds(b)) for a, b in closures]
        self._day_cache: dict[date, list[tuple[int, int]]] = {}
        self._minute_cache: dict[int, bool] = {}

    @classmethod
    def of(cls, cal) -> Calendar:
        """From a calendar's data fields (any object carrying them, e.g. domain's BusinessCalendar)."""
        return cls(timezone=cal.timezone, always_open=cal.always_open, hours=cal.hours,
                   holidays=cal.holidays, workdays=getattr(cal, "workdays", ()),
                   makeup_hours=getattr(cal, "makeup_hours", None),
                   closures=[(c.start, c.end) for c in getattr(cal, "closures", ())])

    def _wall(self, day: date, hh_mm: str) -> int:
        h, m = map(int, hh_mm.split(":"))
        if h == 24:
            day, h = day + timedelta(days=1), 0
        return seconds(datetime.combine(day, time(h, m), tzinfo=self.zone).astimezone(UTC))

    def spans(self, day: date) -> list[tuple[int, int]]:
        if day not in self._day_cache:
            if self.always_open:
                todays = ["00:00-24:00"]
            elif day in self.holidays:
                todays = []
            elif day in self.workdays:
                todays = self.makeup_hours if self.makeup_hours is not None else self.hours.get("mon", [])
            else:
                todays = self.hours.get(WEEKDAYS[day.weekday()], [])
            out = []
            for span in todays:
                start, end = span.strip().split("-")
                open_at = self._wall(day, start)
                close_day = day + timedelta(days=1) if end in ("00:00", "24:00") else day
                close_at = self._wall(close_day, "00:00" if end == "24:00" else end)
                out.append((open_at, close_at))
            self._day_cache[day] = out
        return self._day_cache[day]

    def open_at_minute(self, minute_start: int) -> bool:
        if minute_start not in self._minute_cache:
            local = instant(minute_start).astimezone(self.zone).date()
            is_open = any(a <= minute_start < b for d in (local - timedelta(days=1), local,
                                                           local + timedelta(days=1))
                          for a, b in self.spans(d))
            if is_open and any(a <= minute_start < b for a, b in self.closures):
                is_open = False
            self._minute_cache[minute_start] = is_open
        return self._minute_cache[minute_start]


@dataclass(frozen=True)
class Terms:
    """What a case is held to: targets in seconds of business time, warning shares, the calendar."""

    targets: dict[str, int]
    warn_at: tuple[float, ...]
    calendar: Calendar
    reopen_window: int = 168 * 3600  # seconds of wall-clock time after a close (the policy's default)


@dataclass
class Clock:
    name: str
    target: Fraction  # seconds
    state: str = "running"  # running, paused, met, cancelled
    used: int = 0  # business seconds (commands come at whole seconds)
    cycle: int = 0
    given: set = field(default_factory=set)  # warning shares given and "breach", this cycle
    due_at: int | None = None  # agreed_reply only: a wall-clock instant

    @property
    def active(self) -> bool:
        return self.state in ("running", "paused")


@dataclass(frozen=True)
class Fact:
    kind: str  # warned, breached, met, cancelled
    clock: str
    at: datetime
    share: float | None = None
    late: bool | None = None


class Oracle:
    """Feed it the accepted commands in order with `apply(kind, at, **details)`, then `run_until`."""

    def __init__(self) -> None:
        self.now: int | None = None
        self.terms: Terms | None = None
        self.clocks: dict[str, Clock] = {}
        self.stage = "none"
        self.return_stage: str | None = None
        self.facts: list[Fact] = []
        self.cycles = 0
        self.closed_at: int | None = None
        self.reopenable = False  # closed by the customer's confirmation or the follow-up's end

    # -- the passing of time ------------------------------------------------------------------

    def _thresholds(self, c: Clock) -> list[tuple[Fraction, str | float]]:
        """(used business seconds, what) a running clock has yet to reach, in order."""
        out: list[tuple[Fraction, str | float]] = []
        if c.name != AGREED:
            out += [(_exact(c.target * Fraction(repr(share))), share)
                    for share in self.terms.warn_at if share not in c.given]
            if "breach" not in c.given:
                out.append((_exact(c.target), "breach"))
        return sorted(out, key=lambda t: (t[0], 2.0 if t[1] == "breach" else t[1]))

    def _fire(self, c: Clock, what, at) -> None:
        c.given.add(what)
        if what == "breach":
            self.facts.append(Fact("breached", c.name, instant(at)))
        else:
            self.facts.append(Fact("warned", c.name, instant(at), share=what))

    def _due_now(self, at: int) -> None:
        """Everything a running clock has reached by `at` that is not yet given, dated `at`."""
        for c in sorted(self.clocks.values(), key=lambda c: c.name):
            if c.state != "running":
                continue
            if c.name == AGREED:
                if "breach" not in c.given and c.due_at <= at:
                    self._fire(c, "breach", c.due_at)
                continue
            for amount, what in self._thresholds(c):
                if c.used >= amount:
                    self._fire(c, what, at)

    def _walk(self, start: int, end: int) -> None:
        """Count business time over [start, end); record what falls due strictly before `end`.
        What falls due exactly at `end` is left for whatever happens at `end`."""
        if start >= end:
            return
        cal = self.terms.calendar
        running = [c for c in sorted(self.clocks.values(), key=lambda c: c.name)
                   if c.state == "running" and c.name != AGREED]
        ahead = {c.name: self._thresholds(c) for c in running}  # what each has yet to reach, in order
        agreed = self.clocks.get(AGREED)
        minute = start - start % 60
        while minute < end:
            lo, hi = max(start, minute), min(end, minute + 60)
            if cal.open_at_minute(minute):
                for c in running:
                    before = c.used
                    c.used += hi - lo
                    todo = ahead[c.name]
                    while todo and before < todo[0][0] <= c.used and lo + (todo[0][0] - before) < end:
                        amount, what = todo.pop(0)
                        self._fire(c, what, lo + (amount - before))
            # An agreed reply time is wall-clock: it falls due whether the desk is open or not.
            if agreed is not None and agreed.state == "running" and "breach" not in agreed.given \
                    and lo <= agreed.due_at < hi and agreed.due_at < end:
                self._fire(agreed, "breach", agreed.due_at)
            minute += 60

    def run_until(self, at: datetime) -> list[Fact]:
        """Let time pass to `at` and record everything due by then (a final check_deadlines)."""
        self.apply("check_deadlines", at)
        return self.facts

    # -- the commands --------------------------------------------------------------------------

    def _settle_previous_instant(self, to: int) -> None:
        # Facts due at the previous instant that were deferred (commands came at it) fall due now
        # that time moves past it: recorded at their own instant.
        if self.now is not None and to > self.now and self.terms is not None:
            self._due_now(self.now)

    def _meet(self, *names: str) -> None:
        for n in names:
            c = self.clocks.get(n)
            if c is not None and c.active:
                c.state = "met"
                self.facts.append(Fact("met", n, instant(self.now), late="breach" in c.given))

    def _start(self, name: str, target: Fraction, cycle: int = 0) -> None:
        self.clocks[name] = Clock(name=name, target=target, cycle=cycle)

    def _retarget(self, terms: Terms) -> None:
        self.terms = terms
        for name, c in self.clocks.items():
            if c.state == "cancelled" or name == AGREED:
                continue
            c.target = Fraction(terms.targets[name])
        for c in sorted(self.clocks.values(), key=lambda c: c.name):
            self._gone_past(c)

    def _gone_past(self, c: Clock) -> None:
        """A clock running again: what it has used strictly more than happens now."""
        if c.state != "running" or c.name == AGREED:
            return
        for amount, what in self._thresholds(c):
            if c.used > amount:
                self._fire(c, what, self.now)

    def apply(self, kind: str, at: datetime, *, terms: Terms | None = None,
              reply_by: datetime | None = None) -> None:
        t = seconds(at)
        self._settle_previous_instant(t)
        if self.now is not None and t > self.now and self.terms is not None:
            self._walk(self.now, t)
        self.now = t
        if kind == "open":
            self.terms = terms
            self.stage = "intake"
            for name in ("first_response", "resolution"):
                self._start(name, Fraction(terms.targets[name]))
            return
        if self.stage == "closed":
            # A customer's reply or rejection within the window reopens a case closed as resolved:
            # the resolution clock runs again on the time it had left, whatever the close did to it.
            if kind not in ("record_customer_reply", "reject_solution") or not self.reopenable \
                    or t > self.closed_at + self.terms.reopen_window:
                return
            c = self.clocks.get("resolution")
            if c is not None and c.state in ("paused", "met", "cancelled"):
                c.state = "running"
                self._gone_past(c)
            self.stage = "solution" if kind == "reject_solution" else "response"
        match kind:
            case "check_deadlines":
                self._due_now(t)
            case "respond":
                self._meet("first_response", "next_response", AGREED)
                if self.stage in ("intake", "response"):
                    self.stage = "response"
            case "request_clarification":
                self._meet("first_response", "next_response")
                c = self.clocks.get("resolution")
                if c is not None and c.state == "running":
                    # A warning share reached at this very instant happens now, before the wait
                    # (the breach, if the target is reached too, waits for the resumption).
                    for amount, what in self._thresholds(c):
                        if what != "breach" and c.used >= amount:
                            self._fire(c, what, self.now)
                    c.state = "paused"
                if self.stage != "waiting":
                    self.return_stage, self.stage = self.stage, "waiting"
            case "record_customer_reply":
                if self.stage == "waiting":
                    self.stage, self.return_stage = self.return_stage, None
                    c = self.clocks.get("resolution")
                    if c is not None and c.state == "paused":
                        c.state = "running"
                        self._gone_past(c)
                cycle_active = "next_response" in self.clocks and self.clocks["next_response"].active
                first_done = not self.clocks["first_response"].active
                if first_done and not cycle_active and self.stage not in ("solution", "follow_up"):
                    self.cycles += 1
                    self._start("next_response", Fraction(self.terms.targets["next_response"]), self.cycles)
            case "propose_solution" | "revise_solution":
                self._meet("first_response", "next_response", "resolution", AGREED)
                self.stage = "solution"
            case "start_follow_up":
                self.stage = "follow_up"
            case "reject_solution":
                c = self.clocks.get("resolution")
                if c is not None and c.state in ("paused", "met"):
                    c.state = "running"
                    self._gone_past(c)
                self.stage = "response"
            case "retriage" | "reapply_policy":
                self._retarget(terms)
            case "agree_reply_time":
                previous = self.clocks.get(AGREED)
                if previous is not None and previous.active:
                    self.facts.append(Fact("cancelled", AGREED, instant(t)))
                c = Clock(name=AGREED, target=Fraction(0), due_at=seconds(reply_by))
                self.clocks[AGREED] = c
            case "confirm_solution" | "close" | "expire_follow_up":  # (a confirmation without a survey)
                for name, c in sorted(self.clocks.items()):
                    if c.active:
                        c.state = "cancelled"
                        self.facts.append(Fact("cancelled", name, instant(t)))
                self.stage = "closed"
                self.closed_at, self.reopenable = t, kind != "close"  # the tests close as cancelled
            case _:
                pass  # notes, reassignment, appointments: the clocks do not care
