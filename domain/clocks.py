"""SLA clocks as events: what each lifecycle fact does to the clocks, what the passing of time does,
and how clock events change the state. Pure; the calendar arithmetic comes from domain.calendar."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from domain import events as e
from domain.calendar import BusinessCalendar, add_business_time, business_time_between
from domain.clock_catalogue import BY_NAME, OPENING_CLOCKS
from domain.escalation import escalation_for
from domain.model import CaseState, Clock, Stage
from domain.sla import SlaTerms
from domain.transitions import field_changes

WAITING_ON_CUSTOMER = "waiting on customer"
AGREED_REPLY = "agreed_reply"  # a complaint's reply time agreed with the customer: no warnings, wall-clock due


class ClockView(BaseModel):
    """A clock as a supervisor reads it, measured at a given instant."""

    name: str
    state: str
    target: timedelta
    elapsed: timedelta  # business time used
    paused: timedelta  # calendar time spent waiting on the customer, the current wait included
    due: datetime | None
    breached_at: datetime | None
    met_at: datetime | None
    warned: list[float]


def clock_views(state: CaseState, now: datetime) -> list[ClockView]:
    if state.sla is None:
        return []
    return [ClockView(name=n, state=c.state, target=c.target, elapsed=_elapsed_until_stop(state.sla, c, now),
                      paused=paused_at(c, now), due=c.due, breached_at=c.breached_at, met_at=c.met_at,
                      warned=c.warned)
            for n, c in sorted(state.clocks.items())]


def paused_at(c: Clock, now: datetime) -> timedelta:
    """Calendar time the clock has spent waiting on the customer by `now`, the current wait included."""
    return c.paused_total + (now - c.paused_since if c.paused_since else timedelta(0))


def opening_events(base: dict, terms: SlaTerms) -> list[e.Event]:
    at = base["at"]
    return [e.SlaPolicyPinned(**base, terms=terms),
            *(e.SlaClockStarted(**base, clock=name, target=terms.targets[name],
                                due=add_business_time(terms.calendar, at, terms.targets[name]))
              for name in OPENING_CLOCKS)]


def clock_events(state: CaseState, after: CaseState, fact: e.Event, base: dict) -> list[e.Event]:
    """The clock events a lifecycle fact implies (`state` before it, `after` once it is applied)."""
    terms = state.sla
    if terms is None:
        return []
    clocks, at, out = state.clocks, base["at"], []

    def meet(*names: str) -> None:
        out.extend(e.SlaClockMet(**base, clock=n, late=clocks[n].breached_at is not None)
                   for n in names if n in clocks and clocks[n].active)

    def resume(name: str, reason: str, from_states: tuple[str, ...] = ("paused",)) -> None:
        # A paused clock resumes when the wait ends; a met one only when the case reopens.
        c = clocks.get(name)
        if c is not None and c.state in from_states:
            due = add_business_time(terms.calendar, at, c.target - _elapsed_until_stop(terms, c, at))
            out.append(e.SlaClockResumed(**base, clock=name, due=due, reason=reason))

    match fact:
        case e.ResponseSent():
            meet("first_response", "next_response", AGREED_REPLY)
        case e.ReplyTimeAgreed():
            # A promise made to the customer is a clock of its own, due at the agreed instant. Each
            # agreement is its own cycle, reported on its own; a promise still running when a new
            # one is agreed ends, visibly, as cancelled (a breach it already had stays).
            previous = clocks.get(AGREED_REPLY)
            if previous is not None and previous.active:
                out.append(e.SlaClockCancelled(**base, clock=AGREED_REPLY,
                                               reason="superseded: a new reply time was agreed"))
            out.append(e.SlaClockStarted(**base, clock=AGREED_REPLY, target=fact.reply_by - at, due=fact.reply_by,
                                         cycle=previous.cycle + 1 if previous is not None else 0))
        case e.ClarificationRequested():
            meet("first_response", "next_response")
            if "resolution" in clocks and clocks["resolution"].state == "running":
                # A warning share reached at this very instant is a fact of the running clock, not of
                # the resumed one days later (the breach, due at the resume instant, waits for it).
                out.extend(_warnings_reached(state, base, "resolution"))
                out.append(e.SlaClockPaused(**base, clock="resolution", reason=WAITING_ON_CUSTOMER))
        case e.CustomerReplied():
            if fact.resumed_stage is not None:
                resume("resolution", "customer replied")
            first_done = "first_response" in clocks and not clocks["first_response"].active
            waiting = "next_response" in clocks and clocks["next_response"].active
            if first_done and not waiting and after.stage not in (Stage.solution, Stage.follow_up):
                target = terms.targets["next_response"]
                cycle = clocks["next_response"].cycle + 1 if "next_response" in clocks else 1
                out.append(e.SlaClockStarted(**base, clock="next_response", target=target, cycle=cycle,
                                             due=add_business_time(terms.calendar, at, target)))
        case e.SolutionProposed() | e.SolutionRevised():
            meet("first_response", "next_response", "resolution", AGREED_REPLY)
        case e.SolutionRejected():
            resume("resolution", "solution rejected: case reopened", ("paused", "met"))
        case e.CaseReopened():
            # The close stopped the resolution clock (met, or cancelled while waiting on the customer):
            # the reopened case goes on with the business time it had left.
            resume("resolution", "case reopened after its close", ("paused", "met", "cancelled"))
        case e.CaseClosed():
            out.extend(e.SlaClockCancelled(**base, clock=n, reason=f"case closed ({fact.reason.value})")
                       for n, c in sorted(clocks.items()) if c.active)
    resumed = [ev.clock for ev in out if isinstance(ev, e.SlaClockResumed)]
    if resumed:
        now_running = after
        for ev in out:
            now_running = evolve_clock(now_running, ev)
        out += overdue_events(now_running, base, resumed)
    return out


def retarget_events(state: CaseState, base: dict, terms: SlaTerms, reason: str = "") -> list[e.Event]:
    """Pin new terms; every clock the policy sets keeps the business time it has used and gets the
    new target. A met clock stays met, with the target it will resume on should the case reopen;
    a cancelled clock is history; an agreed reply time is a promise, not the policy's to change."""
    at, out = base["at"], [e.SlaPolicyPinned(**base, terms=terms)]
    for name, c in sorted(state.clocks.items()):
        if c.state == "cancelled" or BY_NAME[name].policy_field is None or name not in terms.targets:
            continue
        elapsed = _elapsed_until_stop(state.sla, c, at)  # measured on the calendar it ran under
        target = terms.targets[name]
        due = add_business_time(terms.calendar, at, target - elapsed) if c.state == "running" else None
        out.append(e.SlaClockRetargeted(**base, clock=name, target=target, elapsed=elapsed, due=due,
                                        reason=reason))
    retargeted = state
    for ev in out:
        retargeted = evolve_clock(retargeted, ev)
    return out + overdue_events(retargeted, base, [ev.clock for ev in out if isinstance(ev, e.SlaClockRetargeted)])


def _warnings_reached(state: CaseState, base: dict, name: str) -> list[e.Event]:
    """The warnings of a running clock whose share is reached exactly at base["at"] (those reached
    before were recorded before the command)."""
    terms, c, at = state.sla, state.clocks[name], base["at"]
    if terms is None or not BY_NAME[name].warns:
        return []
    used, out, current = _elapsed_until_stop(terms, c, at), [], state
    for share in terms.warn_at:
        if share not in c.warned and c.target * share <= used:
            facts, current = _fall_due(current, base, name, share)
            out += facts
    return out


def overdue_events(state: CaseState, base: dict, names: list[str]) -> list[e.Event]:
    """The warnings and the breach a clock has already passed when it starts running again at
    base["at"] (retargeted to a target it has used more of, or resumed over it), recorded at that
    instant, with their escalations, as part of the command that did it: a response at the same
    instant comes after and is late. A share reached exactly (used == amount) is left to the usual
    rule: a response exactly at the due instant meets the clock in time."""
    at, out, current = base["at"], [], state
    terms = state.sla
    for name in sorted(set(names)):
        c = current.clocks.get(name)
        if terms is None or c is None or c.state != "running":
            continue
        used = _elapsed_until_stop(terms, c, at)
        shares = [s for s in terms.warn_at if s not in c.warned and c.target * s < used] if BY_NAME[name].warns else []
        for share in [*shares, *([None] if c.breached_at is None and c.target < used else [])]:
            facts, current = _fall_due(current, {**base, "at": at}, name, share)
            out += facts
    return out


def _elapsed_until_stop(terms: SlaTerms, c: Clock, at: datetime) -> timedelta:
    return elapsed_at(terms.calendar if terms is not None else None, c, at)


def elapsed_at(calendar: BusinessCalendar | None, c: Clock, at: datetime) -> timedelta:
    """The business time a clock has used by `at`, on the calendar of the terms it runs under.

    `c` is read by attribute only (a domain Clock, or a read model's record with the same fields)."""
    if c.running_since is None:
        return c.elapsed_before
    if BY_NAME[c.name].policy_field is None:  # a promised instant: its time, like its target, is wall-clock
        return c.elapsed_before + max(at - c.running_since, timedelta(0))
    assert calendar is not None, f"clock {c.name} runs without SLA terms"
    return c.elapsed_before + business_time_between(calendar, c.running_since, at)


def time_when(terms: SlaTerms, c: Clock, amount: timedelta) -> datetime:
    """The instant a running clock's elapsed business time reaches `amount`."""
    assert c.running_since is not None
    return add_business_time(terms.calendar, c.running_since, amount - c.elapsed_before)


def pending_deadlines(state: CaseState) -> list[tuple[datetime, str, float | None]]:
    """(when, clock, warning share or None for the breach) still ahead for the running clocks."""
    terms = state.sla
    if terms is None or state.is_closed:
        return []
    found = []
    for name, c in sorted(state.clocks.items()):
        if c.state != "running":
            continue
        if BY_NAME[name].warns:
            found += [(time_when(terms, c, c.target * share), name, share)
                      for share in terms.warn_at if share not in c.warned]
        if c.breached_at is None and c.due is not None:
            found.append((c.due, name, None))
    return sorted(found, key=lambda d: (d[0], d[1], d[2] if d[2] is not None else 2.0))


def next_deadline(state: CaseState) -> datetime | None:
    pending = pending_deadlines(state)
    return pending[0][0] if pending else None


def passing_time_events(state: CaseState, base: dict, now: datetime, inclusive: bool = True) -> list[e.Event]:
    """Warnings and breaches due by `now` (or strictly before it), in the order they fell due, each
    escalating where the policy says.

    An event's `at` is the moment it fell due, so a late wake-up (a worker was down) still records
    the true time of the breach. Before a command, only what fell due strictly before its instant:
    a response exactly at the due instant meets its clock.
    """
    out: list[e.Event] = []
    current = state
    for when, name, share in pending_deadlines(state):
        if when > now or (when == now and not inclusive):
            break
        facts, current = _fall_due(current, {**base, "at": when}, name, share)
        out += facts
    return out


def _fall_due(state: CaseState, at: dict, name: str, share: float | None) -> tuple[list[e.Event], CaseState]:
    """A warning (`share`) or the breach (None) of a clock, at at["at"], with the escalation it brings."""
    terms, c = state.sla, state.clocks[name]
    fact: e.Event
    if share is None:
        fact = e.SlaClockBreached(**at, clock=name, due=c.due)
        cause = "breach"
    else:
        fact = e.SlaClockWarned(**at, clock=name, share=share, due=c.due)
        cause = "warning" if terms and share in terms.escalate_on_warning else None
    out = [fact]
    state = evolve_clock(state, fact)
    if cause:
        escalation = escalation_for(state, at, cause=cause, clock=name)
        if escalation is not None:
            out.append(escalation)
            state = evolve_clock(state, escalation)
    return out, state


def evolve_clock(state: CaseState, event: e.Event) -> CaseState:
    """Apply an SLA or escalation event; other events leave the state as it is."""
    match event:
        case e.SlaPolicyPinned():
            return state.model_copy(update={"sla": event.terms})
        case e.SlaClockStarted():
            changes = clock_changes(None, None, event)
            return state.model_copy(update={"clocks": {**state.clocks, event.clock: Clock(**changes)}})
        case (e.SlaClockPaused() | e.SlaClockResumed() | e.SlaClockRetargeted() | e.SlaClockWarned()
              | e.SlaClockBreached() | e.SlaClockMet() | e.SlaClockCancelled()):
            c = state.clocks[event.clock]
            calendar = state.sla.calendar if state.sla is not None else None
            clocks = {**state.clocks, event.clock: c.model_copy(update=clock_changes(calendar, c, event))}
            if isinstance(event, e.SlaClockBreached):
                # Kept apart from the clock, so that a later cycle of it cannot wipe the breach.
                return state.model_copy(update={"clocks": clocks, "breaches": [*state.breaches, f"{c.name}#{c.cycle}"]})
            return state.model_copy(update={"clocks": clocks})
        case e.CaseEscalated() | e.CaseDeEscalated():
            return state.model_copy(update={**field_changes(state, event), "escalation_level_name": event.level_name,
                                            "escalation_acknowledged": False})
        case e.EscalationAcknowledged():
            return state.model_copy(update={"escalation_acknowledged": True})
        case _:
            return state


CLOCK_EVENTS = frozenset({"SlaClockStarted", "SlaClockPaused", "SlaClockResumed", "SlaClockRetargeted",
                          "SlaClockWarned", "SlaClockBreached", "SlaClockMet", "SlaClockCancelled"})


def clock_changes(calendar: BusinessCalendar | None, c: Clock | None, event: Any) -> dict[str, Any]:
    """What a clock event (one of CLOCK_EVENTS) does to its clock `c`: the fields it sets (every field
    of the new clock for a start, `c` being the clock it replaces or None). The one home of the
    clocks' transitions: `evolve_clock` applies them to the domain's Clock, the reporting projection
    to its own record of the clock; both are read by attribute only, and so is the event (its
    `type`, `at` and the fields of its type), so a read model may pass its own decoding of it.
    `calendar`: the calendar of the case's pinned terms."""
    kind, at = event.type, event.at
    if kind == "SlaClockStarted":
        return {"name": event.clock, "cycle": event.cycle, "target": event.target, "state": "running",
                "started_at": at, "running_since": at, "elapsed_before": timedelta(0), "paused_since": None,
                "paused_total": timedelta(0), "due": event.due, "warned": [], "breached_at": None, "met_at": None}
    assert c is not None, f"{kind} of clock {event.clock}, which never started"
    if kind == "SlaClockPaused":
        return {"state": "paused", "elapsed_before": elapsed_at(calendar, c, at), "running_since": None,
                "paused_since": at, "due": None}
    if kind == "SlaClockResumed":
        # Only a wait on the customer is paused time; a met clock a reopen revives was not waiting.
        waited = at - c.paused_since if c.paused_since else timedelta(0)
        return {"state": "running", "running_since": at, "paused_since": None, "met_at": None,
                "paused_total": c.paused_total + waited, "due": event.due}
    if kind == "SlaClockRetargeted":
        return {"target": event.target, "elapsed_before": event.elapsed, "due": event.due,
                "running_since": at if c.state == "running" else None}
    if kind == "SlaClockWarned":
        return {"warned": [*c.warned, event.share]}
    if kind == "SlaClockBreached":
        return {"breached_at": at}
    if kind in ("SlaClockMet", "SlaClockCancelled"):
        # A stopped clock stops counting its pause too (a closed case's wait is over).
        waited = at - c.paused_since if c.paused_since else timedelta(0)
        met = kind == "SlaClockMet"
        return {"state": "met" if met else "cancelled", "met_at": at if met else None,
                "elapsed_before": elapsed_at(calendar, c, at), "running_since": None, "paused_since": None,
                "paused_total": c.paused_total + waited}
    raise ValueError(f"{kind} is not a clock event")
