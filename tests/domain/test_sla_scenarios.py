"""Worked SLA scenarios with hand-computed instants (docs/sla.md, "Worked scenarios").

Each scenario is a case driven through `decide` step by step; each step gives the command, its
instant (the engine's time, and `occurred_at` when the sender gives one) and the exact clock and
escalation events it must produce, written by hand with the arithmetic beside them. Times are local
to the calendar's zone: Asia/Shanghai (UTC+8, no DST) unless an offset is shown, and every time is
written with its weekday, which the test checks, so a slip of a day shows.

The shipped calendar `business`: Mon-Fri 09:00-12:00 and 13:00-18:00 (8 h a day), mainland China's
public holidays and make-up working days (2026: 1-3 Jan off, Sun 4 Jan worked; 15-23 Feb off, Sat
14 and Sat 28 Feb worked; 4-6 Apr off; 1-5 May off, Sat 9 May worked; 19-21 Jun off; 25-27 Sep off,
Sun 20 Sep worked; 1-7 Oct off, Sat 10 Oct worked). Targets of the shipped policy: catch-all 8/8/48
business hours (first response / next response / resolution), urgent 0.25/0.5/4 h round the
clock, high 2/4/16, key account 4/4/24, warranty 12/12/72 round the clock, return visit 72/72/336
round the clock; warnings at 50, 75 and 90 %, only breaches escalate.

    python -m tests.domain.test_sla_scenarios --list    # the scenario list, as in docs/sla.md
    python -m tests.domain.test_sla_scenarios --write   # rewrite that part of docs/sla.md
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from casework.policy import load_policy
from domain import events as e
from domain.calendar import WEEKDAYS, BusinessCalendar
from domain.commands import COMMAND_ADAPTER
from domain.lifecycle import CommandRefused, decide, replay_on
from domain.model import ENGINE
from domain.sla import SlaPolicy
from tests.factory import AGENT, CUSTOMER, SUPERVISOR, open_case

DOC = Path(__file__).resolve().parents[2] / "docs" / "sla.md"
START, END = "<!-- scenarios:start -->", "<!-- scenarios:end -->"

SHIPPED = load_policy(None)
# The supervisor's edited policy: the catch-all tightened to 4/4/24 business hours.
V2 = SHIPPED.model_copy(update={"version": "default-2027.01", "targets": [
    SHIPPED.targets[0].model_copy(update={"first_response_hours": 4, "next_response_hours": 4,
                                          "resolution_hours": 24, "source": "catch-all tightened"}),
    *SHIPPED.targets[1:]]})
assert SHIPPED.targets[0].specificity == 0


def dst_policy(zone: str) -> SlaPolicy:
    """A desk in a DST zone: Mon-Fri 09:00-17:00 at 4/4/16 h, high priority 8/8/24 h round the clock."""
    return SlaPolicy(
        version=f"dst-{zone}", ladder=SHIPPED.ladder,
        calendars={"office": BusinessCalendar(name="office", timezone=zone,
                                              hours={d: ["09:00-17:00"] for d in WEEKDAYS[:5]}),
                   "24x7": BusinessCalendar(name="24x7", timezone=zone, always_open=True)},
        targets=[{"first_response_hours": 4, "next_response_hours": 4, "resolution_hours": 16, "calendar": "office"},
                 {"priority": "high", "first_response_hours": 8, "next_response_hours": 8,
                  "resolution_hours": 24, "calendar": "24x7"}])


POLICIES = {"shipped": SHIPPED, "v2": V2, "berlin": dst_policy("Europe/Berlin"),
            "new_york": dst_policy("America/New_York")}
ZONES = {"shipped": "Asia/Shanghai", "v2": "Asia/Shanghai", "berlin": "Europe/Berlin",
         "new_york": "America/New_York"}
ACTORS = {"record_customer_reply": CUSTOMER, "confirm_solution": CUSTOMER, "reject_solution": CUSTOMER,
          "reapply_policy": SUPERVISOR, "escalate": SUPERVISOR, "check_deadlines": ENGINE,
          "expire_follow_up": ENGINE}
SAMPLE = {"respond": {"message": "We are on it"}, "request_clarification": {"question": "Which model?"},
          "record_customer_reply": {"message": "Model X"}, "propose_solution": {"summary": "Reset it"},
          "reject_solution": {"reason": "Still broken"}, "add_note": {"text": "called"},
          "reapply_policy": {"reason": "policy updated"}, "retriage": {"reason": "triaged"},
          "close": {"reason": "cancelled"}, "agree_reply_time": {"note": "agreed on the phone"}}
INSTANT_FIELDS = ("reply_by",)


@dataclass(frozen=True)
class Step:
    at: str  # the engine's time when the command arrives (and its instant, unless `occurred` says)
    kind: str
    expect: tuple[str, ...] = ()  # the clock and escalation events, in order
    why: str = ""  # the arithmetic
    fields: dict = field(default_factory=dict)
    occurred: str | None = None  # occurred_at given by the sender
    raw: dict = field(default_factory=dict)  # fields passed as they are (malformed instants)
    policy: str | None = None  # reapply_policy: the policy the supervisor applies (default: the case's)
    refused: str | None = None  # CommandRefused code
    invalid: str | None = None  # the field the command model refuses


@dataclass(frozen=True)
class Scenario:
    id: str
    what: str
    steps: tuple[Step, ...]
    case: dict = field(default_factory=dict)  # open_case fields
    policy: str = "shipped"
    after: dict = field(default_factory=dict)  # the case's state at the end

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(ZONES[self.policy])


def step(at: str, kind: str, *expect: str, why: str = "", **kw: Any) -> Step:
    own = {k: kw.pop(k) for k in ("occurred", "raw", "policy", "refused", "invalid") if k in kw}
    return Step(at=at, kind=kind, expect=expect, why=why, fields=kw, **own)


NORMAL_C = {"customer": {"id": "cust-1", "name": "Wang Fang", "tier": "C"}}
KEY_ACCOUNT = {"id": "cust-ka", "name": "China Mobile KA", "tier": "key_account"}

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("S01-in-hours", "Opened on a Monday morning and answered the same morning.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00",
             why="8 h = 3 h (09-12) + 5 h (13-18); 48 h = six 8-hour days, Mon 2 .. Mon 9"),
        step("Mon 2026-03-02 10:30", "respond", "Met first_response @ Mon 2026-03-02 10:30",
             why="1.5 h used of 8 h"),
    ), after={"first_response_at": "Mon 2026-03-02 10:30"}),
    Scenario("S02-lunch", "A high-priority case opened before lunch: the lunch hour does not count.",
             case={"priority": "high"}, steps=(
        step("Mon 2026-03-02 11:30", "open",
             "Pinned 2/4/16 h office @ Mon 2026-03-02 11:30",
             "Started first_response @ Mon 2026-03-02 11:30 due Mon 2026-03-02 14:30",
             "Started resolution @ Mon 2026-03-02 11:30 due Wed 2026-03-04 11:30",
             why="2 h = 0.5 h (11:30-12) + 1.5 h (13:00-14:30); 16 h = 5.5 h Mon + 8 h Tue + 2.5 h Wed"),
        step("Mon 2026-03-02 14:29", "respond",
             "Warned first_response 50% @ Mon 2026-03-02 13:30",
             "Warned first_response 75% @ Mon 2026-03-02 14:00",
             "Warned first_response 90% @ Mon 2026-03-02 14:18",
             "Met first_response @ Mon 2026-03-02 14:29",
             why="1 h = 0.5 h + 0.5 h after lunch; 1.5 h -> 14:00; 1.8 h = 1 h 48 min -> 14:18; "
                 "warnings the timer has not recorded yet are recorded before the response"),
    )),
    Scenario("S03-night", "Opened at night: the clocks start at 09:00 the next working day.", steps=(
        step("Tue 2026-03-03 22:00", "open",
             "Pinned 8/8/48 h office @ Tue 2026-03-03 22:00",
             "Started first_response @ Tue 2026-03-03 22:00 due Wed 2026-03-04 18:00",
             "Started resolution @ Tue 2026-03-03 22:00 due Wed 2026-03-11 18:00",
             why="nothing counts before Wed 09:00; 8 h -> Wed 18:00; 48 h = Wed..Tue (5 days) + Wed 11"),
        step("Wed 2026-03-04 08:59", "respond", "Met first_response @ Wed 2026-03-04 08:59",
             why="answered before opening time: no business time used"),
    )),
    Scenario("S04-friday-evening", "Opened Friday 17:30: the first response falls due on Monday.", steps=(
        step("Fri 2026-03-06 17:30", "open",
             "Pinned 8/8/48 h office @ Fri 2026-03-06 17:30",
             "Started first_response @ Fri 2026-03-06 17:30 due Mon 2026-03-09 17:30",
             "Started resolution @ Fri 2026-03-06 17:30 due Mon 2026-03-16 17:30",
             why="8 h = 0.5 h Fri + 7.5 h Mon (3 h 09-12, 4.5 h 13:00-17:30); "
                 "48 h = 0.5 h + 40 h (Mon 9 .. Fri 13) + 7.5 h Mon 16"),
        step("Mon 2026-03-09 13:30", "check_deadlines",
             "Warned first_response 50% @ Mon 2026-03-09 13:30",
             why="4 h = 0.5 h Fri + 3 h Mon morning + 0.5 h after lunch"),
    )),
    Scenario("S05-weekend", "Opened on a Saturday, answered on the Sunday: no business time used.", steps=(
        step("Sat 2026-03-07 10:00", "open",
             "Pinned 8/8/48 h office @ Sat 2026-03-07 10:00",
             "Started first_response @ Sat 2026-03-07 10:00 due Mon 2026-03-09 18:00",
             "Started resolution @ Sat 2026-03-07 10:00 due Mon 2026-03-16 18:00",
             why="counting starts Mon 09:00: 8 h -> Mon 18:00; 48 h -> Mon 16 18:00"),
        step("Sun 2026-03-08 12:00", "respond", "Met first_response @ Sun 2026-03-08 12:00"),
    )),
    Scenario("S06-exactly-due", "A response exactly at the due instant meets the clock in time.",
             case={"priority": "high"}, steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 2/4/16 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 11:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Tue 2026-03-03 18:00",
             why="2 h -> 11:00; 16 h = Mon 8 h + Tue 8 h"),
        step("Mon 2026-03-02 11:00", "respond",
             "Warned first_response 50% @ Mon 2026-03-02 10:00",
             "Warned first_response 75% @ Mon 2026-03-02 10:30",
             "Warned first_response 90% @ Mon 2026-03-02 10:48",
             "Met first_response @ Mon 2026-03-02 11:00",
             why="due 11:00, answered 11:00: met, not breached (only what fell due strictly before counts)"),
    ), after={"sla_breached": []}),
    Scenario("S07-one-minute-late", "A response a minute after the due instant: breach, escalation, met late.",
             case={"priority": "high"}, steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 2/4/16 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 11:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Tue 2026-03-03 18:00"),
        step("Mon 2026-03-02 11:01", "respond",
             "Warned first_response 50% @ Mon 2026-03-02 10:00",
             "Warned first_response 75% @ Mon 2026-03-02 10:30",
             "Warned first_response 90% @ Mon 2026-03-02 10:48",
             "Breached first_response @ Mon 2026-03-02 11:00",
             "Escalated team_lead (breach first_response) @ Mon 2026-03-02 11:00",
             "Met first_response late @ Mon 2026-03-02 11:01",
             why="the breach is dated 11:00, when it fell due, not 11:01"),
    ), after={"sla_breached": ["first_response"], "escalation_level": 1}),
    Scenario("S08-late-timer", "The timer fires two days late (a worker was down): every fact at its due instant.",
             steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Wed 2026-03-04 10:00", "check_deadlines",
             "Warned first_response 50% @ Mon 2026-03-02 14:00",
             "Warned first_response 75% @ Mon 2026-03-02 16:00",
             "Warned first_response 90% @ Mon 2026-03-02 17:12",
             "Breached first_response @ Mon 2026-03-02 18:00",
             "Escalated team_lead (breach first_response) @ Mon 2026-03-02 18:00",
             why="4 h = 3 h + 1 h -> 14:00; 6 h -> 16:00; 7.2 h = 7 h 12 min -> 17:12; 8 h -> 18:00; "
                 "resolution's 50 % (24 h) is Wed 18:00, not yet"),
        step("Thu 2026-03-05 18:00", "check_deadlines",
             "Warned resolution 50% @ Wed 2026-03-04 18:00",
             why="24 h = Mon + Tue + Wed; 75 % (36 h) is Fri 14:00"),
    )),
    Scenario("S09-clarification-first", "Asking the customer is the first response; the resolution clock waits.",
             steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 10:15", "request_clarification",
             "Met first_response @ Mon 2026-03-02 10:15",
             "Paused resolution @ Mon 2026-03-02 10:15",
             why="resolution used 1 h 15 min"),
        step("Tue 2026-03-03 14:00", "record_customer_reply",
             "Resumed resolution @ Tue 2026-03-03 14:00 due Wed 2026-03-11 11:45",
             "Started next_response#1 @ Tue 2026-03-03 14:00 due Wed 2026-03-04 14:00",
             why="46 h 45 min left: Tue 4 h, Wed..Tue 10 (5 days) 40 h, Wed 11 2 h 45 min -> 11:45; "
                 "next response 8 h = Tue 4 h + Wed 3 h + 1 h"),
    ), after={"first_response_at": "Mon 2026-03-02 10:15", "clarification_rounds": 1}),
    Scenario("S10-paused-over-weekend", "The resolution clock paused over a weekend, then two breaches escalate "
             "two levels.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:30", "respond", "Met first_response @ Mon 2026-03-02 09:30"),
        step("Fri 2026-03-06 16:00", "request_clarification",
             "Warned resolution 50% @ Wed 2026-03-04 18:00",
             "Warned resolution 75% @ Fri 2026-03-06 14:00",
             "Paused resolution @ Fri 2026-03-06 16:00",
             why="24 h = Mon..Wed; 36 h = 32 h Mon..Thu + 3 h + 1 h Fri -> 14:00; 38 h used at 16:00"),
        step("Mon 2026-03-09 10:00", "record_customer_reply",
             "Resumed resolution @ Mon 2026-03-09 10:00 due Tue 2026-03-10 12:00",
             "Started next_response#1 @ Mon 2026-03-09 10:00 due Tue 2026-03-10 10:00",
             why="10 h left: Mon 7 h (10-12, 13-18) + Tue 3 h -> 12:00; next response 8 h = 7 h + 1 h"),
        step("Tue 2026-03-10 12:00", "check_deadlines",
             "Warned next_response 50% @ Mon 2026-03-09 15:00",
             "Warned resolution 90% @ Mon 2026-03-09 16:12",
             "Warned next_response 75% @ Mon 2026-03-09 17:00",
             "Warned next_response 90% @ Tue 2026-03-10 09:12",
             "Breached next_response @ Tue 2026-03-10 10:00",
             "Escalated team_lead (breach next_response) @ Tue 2026-03-10 10:00",
             "Breached resolution @ Tue 2026-03-10 12:00",
             "Escalated service_manager (breach resolution) @ Tue 2026-03-10 12:00",
             why="next response 4 h = 2 h + 2 h -> 15:00, 6 h -> 17:00, 7 h 12 min -> Tue 09:12; "
                 "resolution 43.2 h = 38 h + 5 h 12 min -> Mon 16:12; each breach one level up"),
    ), after={"escalation_level": 2, "sla_breached": ["next_response", "resolution"]}),
    Scenario("S11-clarification-in-solution", "A question while the solution is proposed does not revive the met "
             "resolution clock.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 11:00", "propose_solution",
             "Met first_response @ Mon 2026-03-02 11:00", "Met resolution @ Mon 2026-03-02 11:00"),
        step("Mon 2026-03-02 14:00", "request_clarification",
             why="both clocks met: nothing to pause"),
        step("Tue 2026-03-03 10:00", "record_customer_reply",
             why="back to the solution stage: no resume, no next-response cycle"),
        step("Mon 2026-03-16 10:00", "check_deadlines", why="nothing runs, nothing falls due"),
    ), after={"stage": "solution", "clock_states": {"first_response": "met", "resolution": "met"}}),
    Scenario("S12-reopen", "A rejected solution reopens the case: the resolution clock resumes with the time it "
             "had left.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 15:00", "propose_solution",
             "Warned first_response 50% @ Mon 2026-03-02 14:00",
             "Met first_response @ Mon 2026-03-02 15:00", "Met resolution @ Mon 2026-03-02 15:00",
             why="5 h used (09-12, 13-15)"),
        step("Wed 2026-03-04 10:00", "reject_solution",
             "Resumed resolution @ Wed 2026-03-04 10:00 due Wed 2026-03-11 14:00",
             why="43 h left: Wed 7 h, Thu..Tue 10 (4 days) 32 h, Wed 11 3 h + 1 h -> 14:00"),
    ), after={"stage": "response", "clock_states": {"resolution": "running"}}),
    Scenario("S13-reapply-met-then-reopen", "reapply_policy on met clocks: they stay met with the new target, "
             "which the reopened case then uses.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 15:00", "propose_solution",
             "Warned first_response 50% @ Mon 2026-03-02 14:00",
             "Met first_response @ Mon 2026-03-02 15:00", "Met resolution @ Mon 2026-03-02 15:00"),
        step("Tue 2026-03-03 10:00", "reapply_policy",
             "Pinned 4/4/24 h office @ Tue 2026-03-03 10:00",
             "Retargeted first_response @ Tue 2026-03-03 10:00 used 5:00 of 4:00 due -",
             "Retargeted resolution @ Tue 2026-03-03 10:00 used 5:00 of 24:00 due -",
             policy="v2", why="the edited policy: catch-all 4/4/24; met clocks keep their 5 h and stay met"),
        step("Wed 2026-03-04 10:00", "reject_solution",
             "Resumed resolution @ Wed 2026-03-04 10:00 due Fri 2026-03-06 14:00",
             why="24 - 5 = 19 h left: Wed 7 h, Thu 8 h, Fri 3 h + 1 h -> 14:00"),
    )),
    Scenario("S14-reapply-paused", "reapply_policy on a paused clock: new target, due once the customer answers.",
             steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 11:00", "request_clarification",
             "Met first_response @ Mon 2026-03-02 11:00", "Paused resolution @ Mon 2026-03-02 11:00"),
        step("Mon 2026-03-02 15:00", "reapply_policy",
             "Pinned 4/4/24 h office @ Mon 2026-03-02 15:00",
             "Retargeted first_response @ Mon 2026-03-02 15:00 used 2:00 of 4:00 due -",
             "Retargeted resolution @ Mon 2026-03-02 15:00 used 2:00 of 24:00 due -",
             policy="v2", why="paused: 2 h used, no due instant while waiting"),
        step("Tue 2026-03-03 09:00", "record_customer_reply",
             "Resumed resolution @ Tue 2026-03-03 09:00 due Thu 2026-03-05 16:00",
             "Started next_response#1 @ Tue 2026-03-03 09:00 due Tue 2026-03-03 14:00",
             why="22 h left: Tue 8, Wed 8, Thu 3 + 3 -> 16:00; next response on the pinned 4 h: 3 h + 1 h"),
    )),
    Scenario("S15-reapply-after-due", "reapply_policy long after a due instant the timer missed: the breach is "
             "recorded at its own instant first, then the new targets apply.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Tue 2026-03-03 10:00", "reapply_policy",
             "Warned first_response 50% @ Mon 2026-03-02 14:00",
             "Warned first_response 75% @ Mon 2026-03-02 16:00",
             "Warned first_response 90% @ Mon 2026-03-02 17:12",
             "Breached first_response @ Mon 2026-03-02 18:00",
             "Escalated team_lead (breach first_response) @ Mon 2026-03-02 18:00",
             "Pinned 4/4/24 h office @ Tue 2026-03-03 10:00",
             "Retargeted first_response @ Tue 2026-03-03 10:00 used 9:00 of 4:00 due Tue 2026-03-03 10:00",
             "Retargeted resolution @ Tue 2026-03-03 10:00 used 9:00 of 24:00 due Wed 2026-03-04 18:00",
             policy="v2", why="9 h used (Mon 8 h + Tue 1 h); resolution 15 h left: Tue 7 h + Wed 8 h"),
        step("Wed 2026-03-04 18:00", "check_deadlines",
             "Warned resolution 50% @ Tue 2026-03-03 14:00",
             "Warned resolution 75% @ Wed 2026-03-04 11:00",
             "Warned resolution 90% @ Wed 2026-03-04 15:36",
             "Breached resolution @ Wed 2026-03-04 18:00",
             "Escalated service_manager (breach resolution) @ Wed 2026-03-04 18:00",
             why="of 24 h: 12 h = 9 + 3 (10-12, 13-14); 18 h = 9 + 7 + 2; 21.6 h = 9 + 7 + 3 + 2 h 36 min"),
    )),
    Scenario("S16-reapply-over-target", "reapply_policy on a running clock that has used more than the new target: "
             "it breaches at once; shares passed but never given warn at that instant, once.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:30", "respond", "Met first_response @ Mon 2026-03-02 09:30"),
        step("Thu 2026-03-05 10:00", "reapply_policy",
             "Warned resolution 50% @ Wed 2026-03-04 18:00",
             "Pinned 4/4/24 h office @ Thu 2026-03-05 10:00",
             "Retargeted first_response @ Thu 2026-03-05 10:00 used 0:30 of 4:00 due -",
             "Retargeted resolution @ Thu 2026-03-05 10:00 used 25:00 of 24:00 due Thu 2026-03-05 10:00",
             "Warned resolution 75% @ Thu 2026-03-05 10:00",
             "Warned resolution 90% @ Thu 2026-03-05 10:00",
             "Breached resolution @ Thu 2026-03-05 10:00",
             "Escalated team_lead (breach resolution) @ Thu 2026-03-05 10:00",
             policy="v2", why="25 h used (Mon..Wed 24 h + Thu 1 h) > 24 h: breached with the re-application; "
                              "18 h and 21.6 h passed too; 50 % was given under the old target and is not repeated"),
        step("Thu 2026-03-05 10:00", "check_deadlines", why="nothing left to fall due"),
    )),
    Scenario("S17-retriage-urgent", "Re-triaged normal -> urgent five minutes in: 15 min / 4 h round the clock, "
             "the 5 minutes used kept.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:05", "retriage",
             "Pinned 0.25/0.5/4 h 24x7 @ Mon 2026-03-02 09:05",
             "Retargeted first_response @ Mon 2026-03-02 09:05 used 0:05 of 0:15 due Mon 2026-03-02 09:15",
             "Retargeted resolution @ Mon 2026-03-02 09:05 used 0:05 of 4:00 due Mon 2026-03-02 13:00",
             priority="urgent", why="10 min left -> 09:15; 3 h 55 min left round the clock (lunch counts) -> 13:00"),
        step("Mon 2026-03-02 09:12", "respond",
             "Warned first_response 50% @ Mon 2026-03-02 09:07:30",
             "Warned first_response 75% @ Mon 2026-03-02 09:11:15",
             "Met first_response @ Mon 2026-03-02 09:12",
             why="7.5 min = 5 + 2.5; 11.25 min = 5 + 6.25; 90 % (13.5 min) would be 09:13:30"),
        step("Mon 2026-03-02 13:00", "check_deadlines",
             "Warned resolution 50% @ Mon 2026-03-02 11:00",
             "Warned resolution 75% @ Mon 2026-03-02 12:00",
             "Warned resolution 90% @ Mon 2026-03-02 12:36",
             "Breached resolution @ Mon 2026-03-02 13:00",
             "Escalated emergency_response (breach resolution) @ Mon 2026-03-02 13:00",
             why="2 h = 5 min + 1 h 55 min; 3 h; 3.6 h = 3 h 36 min; an urgent case escalates straight to "
                 "emergency response"),
    ), after={"escalation_level": 3}),
    Scenario("S18-retriage-at-night", "Re-triaged to urgent in the evening: the time used is measured on the "
             "office calendar it ran on, then the clock runs round the clock.", steps=(
        step("Mon 2026-03-02 17:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 17:00",
             "Started first_response @ Mon 2026-03-02 17:00 due Tue 2026-03-03 17:00",
             "Started resolution @ Mon 2026-03-02 17:00 due Tue 2026-03-10 17:00",
             why="8 h = 1 h Mon + 7 h Tue; 48 h = 1 h + 40 h (Tue 3 .. Mon 9) + 7 h Tue 10"),
        step("Mon 2026-03-02 20:00", "retriage",
             "Pinned 0.25/0.5/4 h 24x7 @ Mon 2026-03-02 20:00",
             "Retargeted first_response @ Mon 2026-03-02 20:00 used 1:00 of 0:15 due Mon 2026-03-02 20:00",
             "Retargeted resolution @ Mon 2026-03-02 20:00 used 1:00 of 4:00 due Mon 2026-03-02 23:00",
             "Warned first_response 50% @ Mon 2026-03-02 20:00",
             "Warned first_response 75% @ Mon 2026-03-02 20:00",
             "Warned first_response 90% @ Mon 2026-03-02 20:00",
             "Breached first_response @ Mon 2026-03-02 20:00",
             "Escalated emergency_response (breach first_response) @ Mon 2026-03-02 20:00",
             priority="urgent", why="1 h used (17-18; the evening is closed); 3 h left round the clock; 1 h used of "
                                    "15 min: every share and the breach at the retarget instant, with the re-triage"),
        step("Mon 2026-03-02 20:00", "check_deadlines", why="nothing left: recorded with the re-triage"),
        step("Mon 2026-03-02 23:30", "respond",
             "Warned resolution 50% @ Mon 2026-03-02 21:00",
             "Warned resolution 75% @ Mon 2026-03-02 22:00",
             "Warned resolution 90% @ Mon 2026-03-02 22:36",
             "Breached resolution @ Mon 2026-03-02 23:00",
             "Met first_response late @ Mon 2026-03-02 23:30",
             why="2 h = 1 h + 1 h; 3 h; 3.6 h = 1 h + 2 h 36 min; already at the top: no escalation"),
    )),
    Scenario("S19-next-response-cycles", "Two customer messages: the first cycle breaches and stays breached, the "
             "second is met.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:30", "respond", "Met first_response @ Mon 2026-03-02 09:30"),
        step("Mon 2026-03-02 10:00", "record_customer_reply",
             "Started next_response#1 @ Mon 2026-03-02 10:00 due Tue 2026-03-03 10:00",
             why="8 h = 7 h Mon (10-12, 13-18) + 1 h Tue"),
        step("Tue 2026-03-03 10:00", "check_deadlines",
             "Warned next_response 50% @ Mon 2026-03-02 15:00",
             "Warned next_response 75% @ Mon 2026-03-02 17:00",
             "Warned next_response 90% @ Tue 2026-03-03 09:12",
             "Breached next_response @ Tue 2026-03-03 10:00",
             "Escalated team_lead (breach next_response) @ Tue 2026-03-03 10:00",
             why="4 h = 2 + 2 -> 15:00; 6 h -> 17:00; 7.2 h = 7 h + 12 min -> Tue 09:12"),
        step("Tue 2026-03-03 11:00", "respond", "Met next_response late @ Tue 2026-03-03 11:00"),
        step("Tue 2026-03-03 14:00", "record_customer_reply",
             "Started next_response#2 @ Tue 2026-03-03 14:00 due Wed 2026-03-04 14:00",
             why="8 h = 4 h Tue + 3 h + 1 h Wed"),
        step("Tue 2026-03-03 15:00", "respond", "Met next_response @ Tue 2026-03-03 15:00"),
    ), after={"sla_breached": ["next_response"], "breaches": ["next_response#1"]}),
    Scenario("S20-agreed-reply-reapply", "A complaint's agreed reply time survives reapply_policy as promised, and "
             "breaches at the agreed instant without warnings.", case={"category": "complaint"}, steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:20", "respond", "Met first_response @ Mon 2026-03-02 09:20"),
        step("Mon 2026-03-02 10:00", "agree_reply_time",
             "Started agreed_reply @ Mon 2026-03-02 10:00 due Wed 2026-03-04 12:00",
             reply_by="Wed 2026-03-04 12:00", why="wall-clock: the instant promised"),
        step("Mon 2026-03-02 11:00", "reapply_policy",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 11:00",
             "Retargeted first_response @ Mon 2026-03-02 11:00 used 0:20 of 8:00 due -",
             "Retargeted resolution @ Mon 2026-03-02 11:00 used 2:00 of 48:00 due Mon 2026-03-09 18:00",
             why="no Retargeted for agreed_reply; resolution 46 h left = 6 h Mon + 32 h + 8 h Mon 9"),
        step("Wed 2026-03-04 12:00", "check_deadlines",
             "Breached agreed_reply @ Wed 2026-03-04 12:00",
             "Escalated team_lead (breach agreed_reply) @ Wed 2026-03-04 12:00",
             why="resolution has used 19 h of 48: its 50 % is Wed 18:00"),
        step("Wed 2026-03-04 12:30", "respond", "Met agreed_reply late @ Wed 2026-03-04 12:30"),
    )),
    Scenario("S21-first-response-by-solution", "An urgent case solved at once: the solution is the first response.",
             case={"priority": "urgent"}, steps=(
        step("Sat 2026-03-07 23:50", "open",
             "Pinned 0.25/0.5/4 h 24x7 @ Sat 2026-03-07 23:50",
             "Started first_response @ Sat 2026-03-07 23:50 due Sun 2026-03-08 00:05",
             "Started resolution @ Sat 2026-03-07 23:50 due Sun 2026-03-08 03:50",
             why="round the clock: 15 min and 4 h, Saturday night included"),
        step("Sun 2026-03-08 00:04", "propose_solution",
             "Warned first_response 50% @ Sat 2026-03-07 23:57:30",
             "Warned first_response 75% @ Sun 2026-03-08 00:01:15",
             "Warned first_response 90% @ Sun 2026-03-08 00:03:30",
             "Met first_response @ Sun 2026-03-08 00:04", "Met resolution @ Sun 2026-03-08 00:04",
             why="7.5, 11.25 and 13.5 min after 23:50"),
    ), after={"first_response_at": "Sun 2026-03-08 00:04"}),
    Scenario("S22-close", "Closing cancels the running and the paused clocks.", case={"category": "complaint"},
             steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:30", "agree_reply_time",
             "Started agreed_reply @ Mon 2026-03-02 09:30 due Fri 2026-03-06 12:00", reply_by="Fri 2026-03-06 12:00"),
        step("Mon 2026-03-02 10:00", "request_clarification",
             "Met first_response @ Mon 2026-03-02 10:00", "Paused resolution @ Mon 2026-03-02 10:00"),
        step("Thu 2026-03-05 10:00", "close",
             "Cancelled agreed_reply @ Thu 2026-03-05 10:00", "Cancelled resolution @ Thu 2026-03-05 10:00",
             reason="no_response", why="the agreed reply (running) and the resolution (paused)"),
    ), after={"stage": "closed"}),
    Scenario("S23-instants-in-order", "Reported instants: a little ahead is taken at the engine's time, the future "
             "and the past are refused with their codes.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 10:00", "respond", occurred="Mon 2026-03-02 10:06", refused="occurred_in_future",
             why="6 min ahead of the engine's time: more than the 5 min skew"),
        step("Mon 2026-03-02 10:00", "respond", "Met first_response @ Mon 2026-03-02 10:00",
             occurred="Mon 2026-03-02 10:04", why="4 min ahead: within the skew, taken as the engine's time (no fact "
                                                  "is dated, no clock evaluated, past the engine's now)"),
        step("Mon 2026-03-02 10:02", "record_customer_reply",
             "Started next_response#1 @ Mon 2026-03-02 10:02 due Tue 2026-03-03 10:02",
             why="8 h = 1 h 58 min + 5 h + 1 h 02 min"),
        step("Mon 2026-03-02 11:00", "respond", occurred="Mon 2026-03-02 10:01", refused="occurred_before_last_fact",
             why="10:01 is before the last fact (10:02)"),
    )),
    Scenario("S24-naive-instants", "A time without a zone is refused, never guessed.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 10:00", "respond", raw={"occurred_at": "2026-03-02T10:00:00"}, invalid="occurred_at"),
        step("Mon 2026-03-02 10:00", "agree_reply_time", raw={"reply_by": "2026-03-04T12:00:00"}, invalid="reply_by"),
        step("Mon 2026-03-02 10:00", "respond", raw={"occurred_at": datetime(2026, 3, 2, 10)}, invalid="occurred_at"),
    )),
    Scenario("S25-absurd-years", "Instants outside 1990-2099 are refused: years 1, 1900, 2600, 9999.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 10:00", "respond", raw={"occurred_at": "0001-01-01T00:00:00+08:00"},
             invalid="occurred_at"),
        step("Mon 2026-03-02 10:00", "respond", raw={"occurred_at": "1900-03-02T10:00:00+08:00"},
             invalid="occurred_at"),
        step("Mon 2026-03-02 10:00", "respond", raw={"occurred_at": "2600-03-02T10:00:00+08:00"},
             invalid="occurred_at"),
        step("Mon 2026-03-02 10:00", "respond", raw={"occurred_at": "9999-12-31T23:59:59-08:00"},
             invalid="occurred_at"),
        step("Mon 2026-03-02 10:00", "agree_reply_time", raw={"reply_by": "9999-12-31T23:59:59+08:00"},
             invalid="reply_by"),
        step("Mon 2026-03-02 10:00", "respond", "Met first_response @ Mon 2026-03-02 10:00",
             why="the case took none of them"),
    )),
    Scenario("S26-follow-up-too-short", "An explicit follow-up period shorter than the policy's 1 h is refused.",
             steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 10:00", "propose_solution",
             "Met first_response @ Mon 2026-03-02 10:00", "Met resolution @ Mon 2026-03-02 10:00"),
        step("Mon 2026-03-02 10:05", "start_follow_up", follow_up_hours=1e-9, refused="follow_up_too_short"),
        step("Mon 2026-03-02 10:05", "start_follow_up", follow_up_hours=0.99, refused="follow_up_too_short"),
        step("Mon 2026-03-02 10:05", "start_follow_up", follow_up_hours=1, why="1 h: allowed"),
    ), after={"stage": "follow_up"}),
    Scenario("S27-national-day", "Opened the afternoon before National Day (1-7 Oct off).", steps=(
        step("Wed 2026-09-30 16:00", "open",
             "Pinned 8/8/48 h office @ Wed 2026-09-30 16:00",
             "Started first_response @ Wed 2026-09-30 16:00 due Thu 2026-10-08 16:00",
             "Started resolution @ Wed 2026-09-30 16:00 due Wed 2026-10-14 16:00",
             why="8 h = 2 h Wed + 6 h Thu 8 Oct; 48 h = 2 + 8 (Thu 8) + 8 (Fri 9) + 8 (Sat 10, a make-up "
                 "working day) + 8 (Mon 12) + 8 (Tue 13) + 6 (Wed 14)"),
        step("Thu 2026-10-08 15:00", "respond",
             "Warned first_response 50% @ Thu 2026-10-08 11:00",
             "Warned first_response 75% @ Thu 2026-10-08 14:00",
             "Met first_response @ Thu 2026-10-08 15:00",
             why="4 h = 2 + 2 -> 11:00; 6 h = 2 + 3 + 1 -> 14:00; 90 % (7 h 12 min) would be 15:12"),
    )),
    Scenario("S28-make-up-sunday", "Opened Friday evening before the make-up Sunday of 20 Sep 2026.", steps=(
        step("Fri 2026-09-18 17:00", "open",
             "Pinned 8/8/48 h office @ Fri 2026-09-18 17:00",
             "Started first_response @ Fri 2026-09-18 17:00 due Sun 2026-09-20 17:00",
             "Started resolution @ Fri 2026-09-18 17:00 due Mon 2026-09-28 17:00",
             why="8 h = 1 h Fri + 7 h Sun 20 (worked with Monday's hours); 48 h = 1 + 8 (Sun) + 32 (Mon 21 .. "
                 "Thu 24) + Mid-autumn off Fri 25 .. Sun 27 + 7 (Mon 28)"),
        step("Sun 2026-09-20 17:00", "check_deadlines",
             "Warned first_response 50% @ Sun 2026-09-20 12:00",
             "Warned first_response 75% @ Sun 2026-09-20 15:00",
             "Warned first_response 90% @ Sun 2026-09-20 16:12",
             "Breached first_response @ Sun 2026-09-20 17:00",
             "Escalated team_lead (breach first_response) @ Sun 2026-09-20 17:00",
             why="4 h = 1 + 3; 6 h = 1 + 3 + 2; 7.2 h = 1 + 3 + 3 h 12 min"),
    )),
    Scenario("S29-spring-festival", "A clarification before Spring Festival (15-23 Feb off, Sat 14 and Sat 28 "
             "worked): the resolution clock waits out the holiday.", steps=(
        step("Fri 2026-02-13 17:00", "open",
             "Pinned 8/8/48 h office @ Fri 2026-02-13 17:00",
             "Started first_response @ Fri 2026-02-13 17:00 due Sat 2026-02-14 17:00",
             "Started resolution @ Fri 2026-02-13 17:00 due Sat 2026-02-28 17:00",
             why="8 h = 1 h Fri + 7 h Sat 14 (make-up); 48 h = 1 + 8 (Sat 14) + 32 (Tue 24 .. Fri 27) + 7 (Sat 28)"),
        step("Sat 2026-02-14 11:00", "request_clarification",
             "Met first_response @ Sat 2026-02-14 11:00", "Paused resolution @ Sat 2026-02-14 11:00",
             why="resolution used 3 h (1 + 2)"),
        step("Mon 2026-02-16 10:00", "record_customer_reply",
             "Resumed resolution @ Mon 2026-02-16 10:00 due Mon 2026-03-02 15:00",
             "Started next_response#1 @ Mon 2026-02-16 10:00 due Tue 2026-02-24 18:00",
             why="a reply on a holiday: 45 h left = 32 (Tue 24 .. Fri 27) + 8 (Sat 28) + 5 (Mon 2 Mar 09-12, 13-15); "
                 "next response 8 h = all of Tue 24"),
    )),
    Scenario("S30-new-year", "New Year (1-3 Jan off, Sun 4 Jan worked): a warning in 2025, a response on the "
             "make-up Sunday exactly at the 75 % instant.", case={"priority": "high"}, steps=(
        step("Wed 2025-12-31 17:00", "open",
             "Pinned 2/4/16 h office @ Wed 2025-12-31 17:00",
             "Started first_response @ Wed 2025-12-31 17:00 due Sun 2026-01-04 10:00",
             "Started resolution @ Wed 2025-12-31 17:00 due Mon 2026-01-05 17:00",
             why="2 h = 1 h Wed + 1 h Sun 4 Jan; 16 h = 1 + 8 (Sun) + 7 (Mon 5)"),
        step("Sun 2026-01-04 09:30", "respond",
             "Warned first_response 50% @ Wed 2025-12-31 18:00",
             "Met first_response @ Sun 2026-01-04 09:30",
             why="1 h -> Wed 18:00; 1.5 h -> Sun 09:30, the response's own instant: not recorded"),
    )),
    Scenario("S31-labour-day-make-up-saturday", "Opened Friday evening before the make-up Saturday of 9 May 2026.",
             case={"priority": "high"}, steps=(
        step("Fri 2026-05-08 17:00", "open",
             "Pinned 2/4/16 h office @ Fri 2026-05-08 17:00",
             "Started first_response @ Fri 2026-05-08 17:00 due Sat 2026-05-09 10:00",
             "Started resolution @ Fri 2026-05-08 17:00 due Mon 2026-05-11 17:00",
             why="2 h = 1 h Fri + 1 h Sat 9; 16 h = 1 + 8 (Sat) + 7 (Mon 11)"),
        step("Sat 2026-05-09 10:00", "check_deadlines",
             "Warned first_response 50% @ Fri 2026-05-08 18:00",
             "Warned first_response 75% @ Sat 2026-05-09 09:30",
             "Warned first_response 90% @ Sat 2026-05-09 09:48",
             "Breached first_response @ Sat 2026-05-09 10:00",
             "Escalated team_lead (breach first_response) @ Sat 2026-05-09 10:00",
             why="1 h; 1.5 h = 1 + 0.5; 1.8 h = 1 + 48 min"),
    )),
    Scenario("S32-qingming-key-account", "A key account's case over Qingming (4-6 Apr off): the breach goes to "
             "the dedicated owner first.",
             case={"customer": {**KEY_ACCOUNT, "dedicated_owner": "ka-wang"}}, steps=(
        step("Fri 2026-04-03 16:00", "open",
             "Pinned 4/4/24 h office @ Fri 2026-04-03 16:00",
             "Started first_response @ Fri 2026-04-03 16:00 due Tue 2026-04-07 11:00",
             "Started resolution @ Fri 2026-04-03 16:00 due Thu 2026-04-09 16:00",
             why="key account 4/4/24: 4 h = 2 h Fri + 2 h Tue 7; 24 h = 2 + 8 (Tue) + 8 (Wed) + 6 (Thu)"),
        step("Tue 2026-04-07 12:00", "check_deadlines",
             "Warned first_response 50% @ Fri 2026-04-03 18:00",
             "Warned first_response 75% @ Tue 2026-04-07 10:00",
             "Warned first_response 90% @ Tue 2026-04-07 10:36",
             "Breached first_response @ Tue 2026-04-07 11:00",
             "Escalated key_account_owner (breach first_response) @ Tue 2026-04-07 11:00",
             why="2 h; 3 h = 2 + 1; 3.6 h = 2 + 1 h 36 min"),
    ), after={"assignee": "ka-wang", "escalation_level": 1}),
    Scenario("S33-return-visit", "A key account's return visit: two weeks round the clock (category outweighs tier).",
             case={"category": "return_visit", "channel": "on_site", "customer": KEY_ACCOUNT}, steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 72/72/336 h 24x7 @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Thu 2026-03-05 09:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-16 09:00",
             why="72 h = 3 days; 336 h = 14 days"),
        step("Mon 2026-03-09 09:00", "check_deadlines",
             "Warned first_response 50% @ Tue 2026-03-03 21:00",
             "Warned first_response 75% @ Wed 2026-03-04 15:00",
             "Warned first_response 90% @ Thu 2026-03-05 01:48",
             "Breached first_response @ Thu 2026-03-05 09:00",
             "Escalated team_lead (breach first_response) @ Thu 2026-03-05 09:00",
             "Warned resolution 50% @ Mon 2026-03-09 09:00",
             why="36 h; 54 h; 64.8 h = 2 d 16 h 48 min; 168 h = 7 days (no dedicated owner: team lead)"),
    )),
    Scenario("S34-safety-incident", "A safety incident escalates to emergency response as it opens.",
             case={"category": "safety_incident"}, steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00",
             "Escalated emergency_response (emergency) @ Mon 2026-03-02 09:00"),
    ), after={"escalation_level": 3}),
    Scenario("S35-urgent-warranty", "An urgent warranty case gets the urgent targets (priority outweighs category).",
             case={"priority": "urgent", "category": "warranty"}, steps=(
        step("Fri 2026-03-06 17:30", "open",
             "Pinned 0.25/0.5/4 h 24x7 @ Fri 2026-03-06 17:30",
             "Started first_response @ Fri 2026-03-06 17:30 due Fri 2026-03-06 17:45",
             "Started resolution @ Fri 2026-03-06 17:30 due Fri 2026-03-06 21:30"),
    )),
    Scenario("S36-warranty", "A normal warranty case: 12 h round the clock from a Friday evening.",
             case={"category": "warranty"}, steps=(
        step("Fri 2026-03-06 17:30", "open",
             "Pinned 12/12/72 h 24x7 @ Fri 2026-03-06 17:30",
             "Started first_response @ Fri 2026-03-06 17:30 due Sat 2026-03-07 05:30",
             "Started resolution @ Fri 2026-03-06 17:30 due Mon 2026-03-09 17:30",
             why="12 h and 3 days, nights and the weekend included"),
    )),
    Scenario("S37-retriage-urgent-to-normal", "Re-triaged urgent -> normal after the first response breached: the "
             "breach stays, the warnings are not repeated.", case={"priority": "urgent"}, steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 0.25/0.5/4 h 24x7 @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 09:15",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-02 13:00"),
        step("Mon 2026-03-02 09:20", "retriage",
             "Warned first_response 50% @ Mon 2026-03-02 09:07:30",
             "Warned first_response 75% @ Mon 2026-03-02 09:11:15",
             "Warned first_response 90% @ Mon 2026-03-02 09:13:30",
             "Breached first_response @ Mon 2026-03-02 09:15",
             "Escalated emergency_response (breach first_response) @ Mon 2026-03-02 09:15",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:20",
             "Retargeted first_response @ Mon 2026-03-02 09:20 used 0:20 of 8:00 due Mon 2026-03-02 18:00",
             "Retargeted resolution @ Mon 2026-03-02 09:20 used 0:20 of 48:00 due Mon 2026-03-09 18:00",
             priority="normal", why="7 h 40 min left = 2 h 40 min + 5 h -> 18:00; 47 h 40 min = 7 h 40 min + 40 h"),
        step("Mon 2026-03-02 10:00", "respond", "Met first_response late @ Mon 2026-03-02 10:00",
             why="breached under the old target: met late under the new one"),
    ), after={"sla_breached": ["first_response"], "escalation_level": 3}),
    Scenario("S38-retriage-next-response", "Re-triaged normal -> high while a next-response cycle runs; the next "
             "cycle uses the pinned high targets.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:10", "respond", "Met first_response @ Mon 2026-03-02 09:10"),
        step("Mon 2026-03-02 09:30", "record_customer_reply",
             "Started next_response#1 @ Mon 2026-03-02 09:30 due Tue 2026-03-03 09:30",
             why="8 h = 2.5 h + 5 h + 0.5 h Tue"),
        step("Mon 2026-03-02 10:00", "retriage",
             "Pinned 2/4/16 h office @ Mon 2026-03-02 10:00",
             "Retargeted first_response @ Mon 2026-03-02 10:00 used 0:10 of 2:00 due -",
             "Retargeted next_response @ Mon 2026-03-02 10:00 used 0:30 of 4:00 due Mon 2026-03-02 14:30",
             "Retargeted resolution @ Mon 2026-03-02 10:00 used 1:00 of 16:00 due Tue 2026-03-03 18:00",
             priority="high", why="3.5 h left = 2 h + 1.5 h -> 14:30; 15 h left = 7 h Mon + 8 h Tue"),
        step("Mon 2026-03-02 14:00", "respond",
             "Warned next_response 50% @ Mon 2026-03-02 11:30",
             "Warned next_response 75% @ Mon 2026-03-02 13:30",
             "Met next_response @ Mon 2026-03-02 14:00",
             why="2 h = 0.5 + 1.5 -> 11:30; 3 h = 0.5 + 2 + 0.5 -> 13:30"),
        step("Mon 2026-03-02 15:00", "record_customer_reply",
             "Started next_response#2 @ Mon 2026-03-02 15:00 due Tue 2026-03-03 10:00",
             why="4 h = 3 h Mon + 1 h Tue"),
    )),
    Scenario("S39-opened-on-a-holiday", "Opened on Labour Day (1-5 May off): the clocks start on Wednesday 6 May.",
             case={"priority": "high"}, steps=(
        step("Fri 2026-05-01 10:00", "open",
             "Pinned 2/4/16 h office @ Fri 2026-05-01 10:00",
             "Started first_response @ Fri 2026-05-01 10:00 due Wed 2026-05-06 11:00",
             "Started resolution @ Fri 2026-05-01 10:00 due Thu 2026-05-07 18:00",
             why="nothing counts until Wed 6 May 09:00; 16 h = Wed + Thu"),
    )),
    # -- the review of issue 10 (repro names in brackets) --
    Scenario("S40-retarget-then-respond-at-once", "Re-triaged past the new target and answered in the same minute: "
             "the breach came with the re-triage, the answer is late (r07).", steps=(
        step("Mon 2026-03-02 17:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 17:00",
             "Started first_response @ Mon 2026-03-02 17:00 due Tue 2026-03-03 17:00",
             "Started resolution @ Mon 2026-03-02 17:00 due Tue 2026-03-10 17:00"),
        step("Mon 2026-03-02 20:00", "retriage",
             "Pinned 0.25/0.5/4 h 24x7 @ Mon 2026-03-02 20:00",
             "Retargeted first_response @ Mon 2026-03-02 20:00 used 1:00 of 0:15 due Mon 2026-03-02 20:00",
             "Retargeted resolution @ Mon 2026-03-02 20:00 used 1:00 of 4:00 due Mon 2026-03-02 23:00",
             "Warned first_response 50% @ Mon 2026-03-02 20:00",
             "Warned first_response 75% @ Mon 2026-03-02 20:00",
             "Warned first_response 90% @ Mon 2026-03-02 20:00",
             "Breached first_response @ Mon 2026-03-02 20:00",
             "Escalated emergency_response (breach first_response) @ Mon 2026-03-02 20:00",
             priority="urgent", why="1 h used of 15 min: over the target, so it breaches at the retarget instant"),
        step("Mon 2026-03-02 20:00", "respond", "Met first_response late @ Mon 2026-03-02 20:00",
             why="the response comes after the re-triage that breached the clock"),
    ), after={"sla_breached": ["first_response"], "escalation_level": 3}),
    Scenario("S41-resume-over-target", "A paused clock re-targeted below what it used breaches when the customer's "
             "answer resumes it.", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:30", "respond", "Met first_response @ Mon 2026-03-02 09:30"),
        step("Thu 2026-03-05 10:00", "request_clarification",
             "Warned resolution 50% @ Wed 2026-03-04 18:00",
             "Paused resolution @ Thu 2026-03-05 10:00",
             why="25 h used: Mon..Wed 24 h + Thu 1 h"),
        step("Thu 2026-03-05 11:00", "reapply_policy",
             "Pinned 4/4/24 h office @ Thu 2026-03-05 11:00",
             "Retargeted first_response @ Thu 2026-03-05 11:00 used 0:30 of 4:00 due -",
             "Retargeted resolution @ Thu 2026-03-05 11:00 used 25:00 of 24:00 due -",
             policy="v2", why="paused: over the new target, but waiting on the customer: no breach yet"),
        step("Fri 2026-03-06 10:00", "record_customer_reply",
             "Resumed resolution @ Fri 2026-03-06 10:00 due Fri 2026-03-06 10:00",
             "Started next_response#1 @ Fri 2026-03-06 10:00 due Fri 2026-03-06 15:00",
             "Warned resolution 75% @ Fri 2026-03-06 10:00",
             "Warned resolution 90% @ Fri 2026-03-06 10:00",
             "Breached resolution @ Fri 2026-03-06 10:00",
             "Escalated team_lead (breach resolution) @ Fri 2026-03-06 10:00",
             why="resumed with 25 h of 24 used: 18 h, 21.6 h and 24 h are behind it; next response 4 h = 2 h + 2 h"),
    ), after={"sla_breached": ["resolution"], "escalation_level": 1}),
    Scenario("S42-late-follow-up-expiry", "The follow-up timer fires two hours late: the case closes when the period "
             "ran out, and a promise due after that is cancelled, not breached (r06).",
             case={"category": "complaint"}, steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:30", "propose_solution",
             "Met first_response @ Mon 2026-03-02 09:30", "Met resolution @ Mon 2026-03-02 09:30"),
        step("Mon 2026-03-02 10:00", "agree_reply_time",
             "Started agreed_reply @ Mon 2026-03-02 10:00 due Mon 2026-03-02 11:30", reply_by="Mon 2026-03-02 11:30"),
        step("Mon 2026-03-02 10:00", "start_follow_up", follow_up_hours=1, why="the period ends 11:00"),
        step("Mon 2026-03-02 13:00", "expire_follow_up", "Cancelled agreed_reply @ Mon 2026-03-02 11:00",
             why="closed at 11:00, when the period ran out; the promise was due 11:30, after the close"),
    ), after={"sla_breached": [], "escalation_level": 0, "closed_at": "Mon 2026-03-02 11:00"}),
    Scenario("S43-sender-clock-ahead", "A customer's message dated 4 min ahead of the engine does not breach a clock "
             "before it falls due, and the answer a minute later is in time (r14).", case={"priority": "high"}, steps=(
        step("Mon 2026-03-02 08:00", "open",
             "Pinned 2/4/16 h office @ Mon 2026-03-02 08:00",
             "Started first_response @ Mon 2026-03-02 08:00 due Mon 2026-03-02 11:00",
             "Started resolution @ Mon 2026-03-02 08:00 due Tue 2026-03-03 18:00",
             why="counting starts 09:00: 2 h -> 11:00; 16 h = Mon 8 h + Tue 8 h"),
        step("Mon 2026-03-02 10:58", "record_customer_reply",
             "Warned first_response 50% @ Mon 2026-03-02 10:00",
             "Warned first_response 75% @ Mon 2026-03-02 10:30",
             "Warned first_response 90% @ Mon 2026-03-02 10:48",
             occurred="Mon 2026-03-02 11:02", why="dated 11:02 by a fast clock, taken at 10:58: the clocks are "
                                                  "evaluated to 10:58, the breach (11:00) is still ahead"),
        step("Mon 2026-03-02 10:59", "respond", "Met first_response @ Mon 2026-03-02 10:59",
             why="answered at 10:59, before the due instant"),
    ), after={"sla_breached": [], "escalation_level": 0}),
    Scenario("S44-second-agreed-reply", "Each reply time agreed with a complaining customer is its own cycle; one "
             "still running when another is agreed is cancelled, visibly (r02).", case={"category": "complaint"}, steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:20", "respond", "Met first_response @ Mon 2026-03-02 09:20"),
        step("Mon 2026-03-02 10:00", "agree_reply_time",
             "Started agreed_reply @ Mon 2026-03-02 10:00 due Wed 2026-03-04 12:00", reply_by="Wed 2026-03-04 12:00"),
        step("Wed 2026-03-04 12:00", "check_deadlines",
             "Breached agreed_reply @ Wed 2026-03-04 12:00",
             "Escalated team_lead (breach agreed_reply) @ Wed 2026-03-04 12:00"),
        step("Wed 2026-03-04 12:30", "respond", "Met agreed_reply late @ Wed 2026-03-04 12:30"),
        step("Wed 2026-03-04 13:00", "agree_reply_time",
             "Started agreed_reply#1 @ Wed 2026-03-04 13:00 due Fri 2026-03-06 12:00", reply_by="Fri 2026-03-06 12:00",
             why="a second promise: cycle 1; the first (cycle 0) stays met late and breached"),
        step("Thu 2026-03-05 09:00", "agree_reply_time",
             "Warned resolution 50% @ Wed 2026-03-04 18:00",
             "Cancelled agreed_reply @ Thu 2026-03-05 09:00",
             "Started agreed_reply#2 @ Thu 2026-03-05 09:00 due Fri 2026-03-06 17:00", reply_by="Fri 2026-03-06 17:00",
             why="renegotiated while cycle 1 runs: cycle 1 is cancelled, cycle 2 starts; resolution's 24 h = Mon..Wed"),
        step("Thu 2026-03-05 10:00", "respond", "Met agreed_reply @ Thu 2026-03-05 10:00"),
    ), after={"sla_breached": ["agreed_reply"], "breaches": ["agreed_reply#0"]}),
    Scenario("S45-warning-at-the-pause-instant", "The desk asks the customer exactly when the resolution clock "
             "reaches 50 %: the warning is recorded then, not when the customer answers days later (r13).", steps=(
        step("Mon 2026-03-02 09:00", "open",
             "Pinned 8/8/48 h office @ Mon 2026-03-02 09:00",
             "Started first_response @ Mon 2026-03-02 09:00 due Mon 2026-03-02 18:00",
             "Started resolution @ Mon 2026-03-02 09:00 due Mon 2026-03-09 18:00"),
        step("Mon 2026-03-02 09:30", "respond", "Met first_response @ Mon 2026-03-02 09:30"),
        step("Wed 2026-03-04 18:00", "request_clarification",
             "Warned resolution 50% @ Wed 2026-03-04 18:00",
             "Paused resolution @ Wed 2026-03-04 18:00",
             why="24 h = Mon + Tue + Wed, reached at 18:00, the instant of the question"),
        step("Mon 2026-03-09 10:00", "record_customer_reply",
             "Resumed resolution @ Mon 2026-03-09 10:00 due Thu 2026-03-12 10:00",
             "Started next_response#1 @ Mon 2026-03-09 10:00 due Tue 2026-03-10 10:00",
             why="24 h left: Mon 7 h, Tue 8 h, Wed 8 h, Thu 1 h -> 10:00; next response 8 h = 7 h + 1 h"),
        step("Mon 2026-03-09 10:00", "check_deadlines", why="the 50 % warning is not repeated"),
    )),
    Scenario("D1-berlin-spring-office", "Europe/Berlin office hours across the spring-forward weekend: working "
             "hours stay wall-clock hours.", policy="berlin", steps=(
        step("Fri 2026-03-27 16:00+01:00", "open",
             "Pinned 4/4/16 h office @ Fri 2026-03-27 16:00+01:00",
             "Started first_response @ Fri 2026-03-27 16:00+01:00 due Mon 2026-03-30 12:00+02:00",
             "Started resolution @ Fri 2026-03-27 16:00+01:00 due Tue 2026-03-31 16:00+02:00",
             why="09-17: 4 h = 1 h Fri (CET) + 3 h Mon (CEST); 16 h = 1 + 8 + 7"),
        step("Mon 2026-03-30 12:00+02:00", "check_deadlines",
             "Warned first_response 50% @ Mon 2026-03-30 10:00+02:00",
             "Warned first_response 75% @ Mon 2026-03-30 11:00+02:00",
             "Warned first_response 90% @ Mon 2026-03-30 11:36+02:00",
             "Breached first_response @ Mon 2026-03-30 12:00+02:00",
             "Escalated team_lead (breach first_response) @ Mon 2026-03-30 12:00+02:00",
             why="2 h = 1 + 1; 3 h = 1 + 2; 3.6 h = 1 + 2 h 36 min"),
    )),
    Scenario("D2-berlin-spring-24x7", "Round the clock in Berlin across 02:00 -> 03:00: 8 hours are 8 real hours "
             "(the wall clock shows 9).", policy="berlin", case={"priority": "high"}, steps=(
        step("Sat 2026-03-28 22:00+01:00", "open",
             "Pinned 8/8/24 h 24x7 @ Sat 2026-03-28 22:00+01:00",
             "Started first_response @ Sat 2026-03-28 22:00+01:00 due Sun 2026-03-29 07:00+02:00",
             "Started resolution @ Sat 2026-03-28 22:00+01:00 due Sun 2026-03-29 23:00+02:00",
             why="21:00 UTC + 8 h = 05:00 UTC = 07:00 CEST; + 24 h = 21:00 UTC Sun = 23:00 CEST"),
        step("Sun 2026-03-29 06:30+02:00", "respond",
             "Warned first_response 50% @ Sun 2026-03-29 03:00+02:00",
             "Warned first_response 75% @ Sun 2026-03-29 05:00+02:00",
             "Warned first_response 90% @ Sun 2026-03-29 06:12+02:00",
             "Met first_response @ Sun 2026-03-29 06:30+02:00",
             why="4 h -> 01:00 UTC, the first instant of summer time (03:00 CEST); 6 h -> 03:00 UTC; "
                 "7 h 12 min -> 04:12 UTC"),
    )),
    Scenario("D3-new-york-fall-24x7", "Round the clock in New York across 02:00 -> 01:00: 8 hours are 8 real hours "
             "(the wall clock shows 7).", policy="new_york", case={"priority": "high"}, steps=(
        step("Sat 2026-10-31 22:00-04:00", "open",
             "Pinned 8/8/24 h 24x7 @ Sat 2026-10-31 22:00-04:00",
             "Started first_response @ Sat 2026-10-31 22:00-04:00 due Sun 2026-11-01 05:00-05:00",
             "Started resolution @ Sat 2026-10-31 22:00-04:00 due Sun 2026-11-01 21:00-05:00",
             why="02:00 UTC + 8 h = 10:00 UTC = 05:00 EST; + 24 h = 02:00 UTC Mon = 21:00 EST Sun"),
        step("Sun 2026-11-01 05:00-05:00", "check_deadlines",
             "Warned first_response 50% @ Sun 2026-11-01 01:00-05:00",
             "Warned first_response 75% @ Sun 2026-11-01 03:00-05:00",
             "Warned first_response 90% @ Sun 2026-11-01 04:12-05:00",
             "Breached first_response @ Sun 2026-11-01 05:00-05:00",
             "Escalated team_lead (breach first_response) @ Sun 2026-11-01 05:00-05:00",
             why="4 h -> 06:00 UTC, the second 01:00 (EST); 6 h -> 08:00 UTC; 7.2 h -> 09:12 UTC"),
    )),
    Scenario("D4-new-york-spring-office", "New York office hours across the spring-forward weekend (8 Mar 2026).",
             policy="new_york", steps=(
        step("Fri 2026-03-06 15:00-05:00", "open",
             "Pinned 4/4/16 h office @ Fri 2026-03-06 15:00-05:00",
             "Started first_response @ Fri 2026-03-06 15:00-05:00 due Mon 2026-03-09 11:00-04:00",
             "Started resolution @ Fri 2026-03-06 15:00-05:00 due Tue 2026-03-10 15:00-04:00",
             why="09-17: 4 h = 2 h Fri (EST) + 2 h Mon (EDT); 16 h = 2 + 8 + 6"),
        step("Mon 2026-03-09 10:30-04:00", "respond",
             "Warned first_response 50% @ Fri 2026-03-06 17:00-05:00",
             "Warned first_response 75% @ Mon 2026-03-09 10:00-04:00",
             "Met first_response @ Mon 2026-03-09 10:30-04:00",
             why="2 h -> the close on Friday; 3 h = 2 + 1"),
    )),
    Scenario("D5-berlin-fall-office", "Berlin office hours across the fall-back weekend (25 Oct 2026).",
             policy="berlin", steps=(
        step("Fri 2026-10-23 16:00+02:00", "open",
             "Pinned 4/4/16 h office @ Fri 2026-10-23 16:00+02:00",
             "Started first_response @ Fri 2026-10-23 16:00+02:00 due Mon 2026-10-26 12:00+01:00",
             "Started resolution @ Fri 2026-10-23 16:00+02:00 due Tue 2026-10-27 16:00+01:00",
             why="4 h = 1 h Fri (CEST) + 3 h Mon (CET); 16 h = 1 + 8 + 7"),
        step("Mon 2026-10-26 11:00+01:00", "respond",
             "Warned first_response 50% @ Mon 2026-10-26 10:00+01:00",
             "Met first_response @ Mon 2026-10-26 11:00+01:00",
             why="2 h = 1 + 1 -> 10:00; 3 h -> 11:00, the response's own instant"),
    )),
)


# -- reading and writing instants -------------------------------------------------------------------

_WHEN = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?)([+-]\d\d:\d\d)?")


def parse(text: str, zone: ZoneInfo) -> datetime:
    m = _WHEN.fullmatch(text)
    assert m, f"not a time: {text!r}"
    day, wall, offset = m.groups()
    local = datetime.fromisoformat(wall)
    if offset:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = map(int, offset[1:].split(":"))
        at = local.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
        assert at.astimezone(zone).utcoffset() == at.utcoffset(), f"{text}: not the offset of {zone.key} then"
    else:
        assert zone.key == "Asia/Shanghai", f"{text}: write the offset in a DST zone"
        at = local.replace(tzinfo=zone)
    assert at.strftime("%a") == day, f"{text}: {wall} is a {at.strftime('%A')}"
    return at


def show(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    text = local.strftime("%a %Y-%m-%d %H:%M")
    if local.second or local.microsecond:
        text += f":{local.second:02d}" + (f".{local.microsecond:06d}" if local.microsecond else "")
    if zone.key != "Asia/Shanghai":
        text += local.isoformat()[-6:]
    return text


def hours_minutes(amount: timedelta) -> str:
    whole = int(amount.total_seconds())
    text = f"{whole // 3600}:{whole % 3600 // 60:02d}"
    return text + (f":{whole % 60:02d}" if whole % 60 else "")


def render(event: e.Event, zone: ZoneInfo) -> str | None:
    """A clock or escalation event as the scenarios write it; None for the lifecycle facts."""
    at = f"@ {show(event.at, zone)}"
    match event:
        case e.SlaPolicyPinned():
            t = event.terms.targets
            hrs = "/".join(f"{t[c].total_seconds() / 3600:g}"
                           for c in ("first_response", "next_response", "resolution"))
            return f"Pinned {hrs} h {'24x7' if event.terms.calendar.always_open else 'office'} {at}"
        case e.SlaClockStarted():
            cycle = f"#{event.cycle}" if event.cycle else ""
            return f"Started {event.clock}{cycle} {at} due {show(event.due, zone)}"
        case e.SlaClockPaused():
            return f"Paused {event.clock} {at}"
        case e.SlaClockResumed():
            return f"Resumed {event.clock} {at} due {show(event.due, zone)}"
        case e.SlaClockWarned():
            return f"Warned {event.clock} {event.share:.0%} {at}"
        case e.SlaClockBreached():
            return f"Breached {event.clock} {at}"
        case e.SlaClockMet():
            return f"Met {event.clock}{' late' if event.late else ''} {at}"
        case e.SlaClockCancelled():
            return f"Cancelled {event.clock} {at}"
        case e.SlaClockRetargeted():
            due = show(event.due, zone) if event.due else "-"
            return (f"Retargeted {event.clock} {at} used {hours_minutes(event.elapsed)} of "
                    f"{hours_minutes(event.target)} due {due}")
        case e.CaseEscalated():
            cause = f"{event.cause} {event.clock}" if event.clock else event.cause
            return f"Escalated {event.level_name} ({cause}) {at}"
    return None


# -- running a scenario -----------------------------------------------------------------------------

def build(sc: Scenario, st: Step, number: int = 0):
    zone = sc.zone
    fields: dict[str, Any] = {**SAMPLE.get(st.kind, {}), **st.fields}
    for name in INSTANT_FIELDS:
        if isinstance(fields.get(name), str):
            fields[name] = parse(fields[name], zone)
    if st.occurred:
        fields["occurred_at"] = parse(st.occurred, zone)
    fields.update(st.raw)
    if st.kind == "open":
        return open_case(case_id=f"case-{sc.id}", **{"priority": "normal", "category": "fault",
                                                     "channel": "email", **NORMAL_C, **sc.case, **fields})
    return COMMAND_ADAPTER.validate_python({"kind": st.kind, "command_id": f"{sc.id}-{number}",
                                            "actor": ACTORS.get(st.kind, AGENT), **fields})


def terms_for(sc: Scenario, st: Step, state, cmd):
    """The terms the workflow would read: the case's (the new priority or category on a re-triage)."""
    policy = POLICIES[st.policy or sc.policy]
    if st.kind == "open":
        return policy.terms_for(cmd.priority, cmd.customer.tier, cmd.category, cmd.channel)
    if st.kind == "retriage":  # from the policy version pinned on the case, as the workflow does
        return state.sla.policy.terms_for(cmd.priority or state.priority, state.customer.tier,
                                          cmd.category or state.category, state.channel)
    if st.kind == "reapply_policy":
        return policy.terms_for(state.priority, state.customer.tier, state.category, state.channel)
    return None


def play(sc: Scenario):
    """Run the scenario; yields (step, rendered events or the refusal) and returns the final state."""
    state = None
    outcomes = []
    for number, st in enumerate(sc.steps):
        if st.invalid:
            with pytest.raises(ValidationError) as refused:
                build(sc, st, number)
            assert any(st.invalid in map(str, err["loc"]) for err in refused.value.errors()), refused.value
            outcomes.append((st, ("invalid", st.invalid)))
            continue
        cmd = build(sc, st, number)
        now = parse(st.at, sc.zone)
        try:
            out = decide(state, cmd, now, terms_for(sc, st, state, cmd))
        except CommandRefused as refusal:
            outcomes.append((st, ("refused", refusal.code)))
            continue
        state = replay_on(state, out)
        outcomes.append((st, tuple(r for r in (render(ev, sc.zone) for ev in out) if r is not None)))
    return outcomes, state


@pytest.mark.parametrize("sc", SCENARIOS, ids=[sc.id for sc in SCENARIOS])
def test_scenario(sc: Scenario):
    outcomes, state = play(sc)
    for st, got in outcomes:
        if st.invalid:
            assert got == ("invalid", st.invalid)
        elif st.refused:
            assert got == ("refused", st.refused), f"{st.at} {st.kind}"
        else:
            assert got == st.expect, f"{st.at} {st.kind}"
    for key, want in sc.after.items():
        match key:
            case "first_response_at" | "closed_at":
                assert getattr(state, key) == parse(want, sc.zone), key
            case "clock_states":
                assert {n: state.clocks[n].state for n in want} == want
            case "stage":
                assert state.stage.value == want
            case _:
                assert getattr(state, key) == want, key


def test_there_are_at_least_thirty_scenarios_with_unique_ids():
    assert len(SCENARIOS) >= 30
    assert len({sc.id for sc in SCENARIOS}) == len(SCENARIOS)


def test_every_scenario_time_reads_back_as_written():
    """The renderer and the parser agree, so an expected line means the instant it shows."""
    for sc in SCENARIOS:
        for st in sc.steps:
            for line in (st.at, st.occurred or "", *st.expect):
                for m in _WHEN.finditer(line):
                    assert show(parse(m.group(0), sc.zone), sc.zone) == m.group(0), (sc.id, line)


# -- the list in docs/sla.md ----------------------------------------------------------------------

def scenario_list() -> str:
    lines = [START, "",
             f"{len(SCENARIOS)} scenarios, generated from `tests/domain/test_sla_scenarios.py` "
             "(`python -m tests.domain.test_sla_scenarios --write`); a test keeps this list and the test "
             "table equal. Times are local: Asia/Shanghai unless an offset is shown. `Pinned a/b/c h` gives "
             "the first-response, next-response and resolution targets and the calendar (office hours or "
             "24x7); `used x of y` is business time used and the new target; refusals give their code.", ""]
    for sc in SCENARIOS:
        policy = "" if sc.policy == "shipped" else f" (policy: {sc.policy}, {ZONES[sc.policy]})"
        case = {"priority": "normal", "category": "fault", "channel": "email", "tier": "C"}
        case.update({k: v for k, v in sc.case.items() if k in case})
        if "customer" in sc.case:
            case["tier"] = sc.case["customer"]["tier"]
        lines.append(f"**{sc.id}** {sc.what}{policy}  ")
        lines.append(f"Case: {case['priority']} / {case['tier']} / {case['category']} / {case['channel']}.")
        lines.append("")
        for st in sc.steps:
            when = st.at + (f" (occurred_at {st.occurred})" if st.occurred else "")
            detail = ", ".join(f"{k}={v}" for k, v in {**st.fields, **st.raw}.items()
                               if k not in ("reason",) or st.kind == "close")
            if st.policy:
                detail = ", ".join(filter(None, [detail, f"policy {st.policy}"]))
            head = f"- {when} `{st.kind}`" + (f" ({detail})" if detail else "")
            if st.invalid:
                head += f": refused by the command model (`{st.invalid}`)"
            elif st.refused:
                head += f": refused `{st.refused}`"
            elif not st.expect:
                head += ": no clock event"
            lines.append(head + (f" — {st.why}" if st.why else ""))
            lines.extend(f"  - {line}" for line in st.expect)
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write_doc(text: str) -> str:
    doc = DOC.read_text()
    block = scenario_list()
    if START in doc:
        head, rest = doc.split(START, 1)
        return head + block + rest.split(END, 1)[1]
    marker = "\n## Rule table"
    if marker in doc:
        head, tail = doc.split(marker, 1)
        return head.rstrip("\n") + "\n\n" + block + "\n" + marker + tail
    return doc.rstrip("\n") + "\n\n" + block + "\n"


def test_the_doc_lists_exactly_these_scenarios():
    doc = DOC.read_text()
    assert START in doc and END in doc, "run: python -m tests.domain.test_sla_scenarios --write"
    found = START + doc.split(START, 1)[1].split(END, 1)[0] + END
    assert found == scenario_list(), "docs/sla.md is stale: python -m tests.domain.test_sla_scenarios --write"


if __name__ == "__main__":
    if "--write" in sys.argv:
        DOC.write_text(write_doc(DOC.read_text()))
    else:
        print(scenario_list())
