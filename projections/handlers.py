"""What each event type does to the reporting tables: one handler per type, applied to the memory of
the case (projections/memory.py) in a batch, and the rows each table gets from the batch. Pure: the
view reads the memories and writes the rows (projections/view.py).

A batch keeps the memories of the cases it touches, applies its events to them in order, and then
writes each row once: a case's `cases` and `case_state` rows, a clock cycle's row as it stood after
the last event of the batch in which that cycle was current (a next-response cycle's row is final
once the next one starts), and the rows appended per event. The rows are those the domain's state
after each single event gives (projections/rows.py, from domain.evolve): the lifecycle fields change
by the domain's own rules (domain.transitions) and the SLA clocks by domain.clocks' own functions,
and tests/projections hold every table equal to that oracle on histories of the engine's rules and
of the importer. So the oracle holds the batching, the memory and the rows; the rules themselves,
shared, are held by worked examples (tests/domain/test_field_rules.py and the domain's tests).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.clocks import CLOCK_EVENTS, clock_changes, elapsed_at, paused_at
from domain.model import Stage
from domain.transitions import FIELD_RULES, Rule, field_changes
from projections import facts as f, rows
from projections.memory import FORMAT, CaseMemory, ClockMemory, calendar, calendar_key, remember
from projections.rows import ESCALATION_KINDS
from projections.schema import CLOCK_NAMES

STAFF_ROLES = frozenset(rows.STAFF_ROLES)

CASE_COLUMNS = (
    "case_id", "source_system", "external_id", "stage", "priority", "tier", "category", "channel", "customer_id",
    "team", "assignee", "opened_at", "first_response_at", "solved_at", "closed_at", "closure_reason",
    "first_response_seconds", "first_response_business_seconds", "resolution_seconds",
    "resolution_business_seconds", "escalation_level", "reopen_count", "clarification_rounds", "notes_count",
    "first_contact_resolution", "sla_policy_version", *(f"{name}_breached" for name in CLOCK_NAMES),
    "satisfaction_score", "updated_at", "events")
CLOCK_COLUMNS = ("case_id", "clock", "cycle", "state", "target_seconds", "started_at", "due",
                 "elapsed_business_seconds", "paused_seconds", "met_at", "breached_at", "breached", "warned_shares")
# The tables rows are appended to, per event, with their columns.
APPENDED = {
    "escalations": ("case_id", "seq", "at", "kind", "level", "level_name", "owner", "cause", "clock", "reason",
                    "actor_id", "actor_role"),
    "agent_activity": ("case_id", "seq", "at", "actor_id", "actor_role", "event_type", "stage_after", "team"),
    "callbacks": ("case_id", "attempt", "at", "channel", "survey_skipped", "customer_id"),
    "surveys": ("case_id", "round", "at", "customer_id", "overall", "scale", "original_overall", "safety_incident",
                "team", "assignee", "category"),
    "survey_scores": ("case_id", "round", "dimension", "score", "original"),
}
RUNNING = frozenset({"running", "paused"})  # a clock whose row changes with time (elapsed, or paused)

_ISO: dict[datetime, str] = {}


def iso(t: datetime | None) -> str | None:
    """projections.rows.iso (UTC, fixed width), remembered: a case's instants recur in its rows."""
    if t is None:
        return None
    text = _ISO.get(t)
    if text is None:
        if len(_ISO) > 50_000:
            _ISO.clear()
        text = _ISO[t] = rows.iso(t)
    return text


def _seconds(d: timedelta | None) -> float | None:
    return None if d is None else d.total_seconds()


@dataclass
class Pending:
    """A batch's work: the memories of the cases it touched and the rows to write."""

    memories: dict[str, CaseMemory] = field(default_factory=dict)  # loaded before the batch (or opened in it)
    latest: dict[str, f.Fact] = field(default_factory=dict)  # each touched case's latest event of the batch
    dirty: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # clocks an event changed
    superseded: dict[tuple[str, str, int], tuple] = field(default_factory=dict)  # rows of cycles that ended
    appended: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    actions: Counter = field(default_factory=Counter)  # (actor id, role) -> staff actions in the batch
    touched: Counter = field(default_factory=Counter)  # (actor id, role) -> cases they acted on first
    subjects: list[tuple[str, str, str]] = field(default_factory=list)  # (case, customer, subject) opened
    calendars: dict[str, bytes] = field(default_factory=dict)  # key -> JSON of the calendars pinned


def apply(p: Pending, fact: f.Fact) -> None:
    """One event: its handler changes the case's memory and appends its rows."""
    m = p.memories.get(fact.case_id)
    if m is None:
        if fact.type != "CaseOpened":
            raise ValueError(f"{fact.type} of case {fact.case_id}, which the reporting tables never saw opened")
        m = p.memories[fact.case_id] = _opened(fact)  # type: ignore[arg-type]
    m.version += 1
    handler = HANDLERS[fact.type]
    if handler is not None:
        handler(p, m, fact)
    actor = fact.actor
    if actor.role in STAFF_ROLES:
        who = (actor.id, actor.role)
        p.actions[who] += 1
        if who not in m.staff:
            m.staff.append(who)
            p.touched[who] += 1
        p.appended["agent_activity"].append((m.case_id, m.version, iso(fact.at), actor.id, actor.role, fact.type,
                                             m.stage, m.team))
    p.latest[m.case_id] = fact


def _opened(e: f.CaseOpened) -> CaseMemory:
    return CaseMemory(memory=FORMAT, case_id=e.case_id, source_system=e.source.system if e.source else None,
                      external_id=e.source.external_id if e.source else None, stage="intake", priority=e.priority,
                      tier=e.customer.tier, category=e.category, channel=e.channel, customer_id=e.customer.id,
                      team=e.team, assignee=e.assignee, opened_at=e.at)


def _case_opened(p: Pending, m: CaseMemory, e: f.CaseOpened) -> None:
    p.subjects.append((m.case_id, m.customer_id, e.subject))


# The lifecycle facts: the fields the tables show, changed by the domain's own rules (domain.transitions,
# which evolve applies too), here to the case's memory, a stage kept as its text.

def _set(m: CaseMemory, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(m, name, value.value if isinstance(value, Stage) else value)


def _by_rule(rule: Rule) -> Callable[[Pending, CaseMemory, Any], None]:
    def handler(p: Pending, m: CaseMemory, e: Any) -> None:
        _set(m, rule(m, e))
    return handler


def _callback(p: Pending, m: CaseMemory, e: f.CallbackAttempted) -> None:
    p.appended["callbacks"].append((m.case_id, e.attempt, iso(e.at), e.channel, e.survey_skipped or None,
                                    m.customer_id))


def _survey(p: Pending, m: CaseMemory, e: f.SurveyRecorded) -> None:
    s = e.survey
    m.satisfaction = s.overall
    p.appended["surveys"].append((m.case_id, s.round, iso(e.at), m.customer_id, s.overall, s.scale,
                                  s.original.get("overall"), int(s.safety_incident), m.team, m.assignee, m.category))
    p.appended["survey_scores"].extend((m.case_id, s.round, d, v, s.original[d]) for d, v in s.scores.items())


# The SLA: the terms pinned, the clocks (domain.clocks.clock_changes), escalations.

def _pinned(p: Pending, m: CaseMemory, e: f.SlaPolicyPinned) -> None:
    raw = bytes(e.terms.calendar)
    key = calendar_key(raw)
    if key not in p.calendars:  # kept once per distinct calendar (sla_calendars), decoded once
        p.calendars[key] = raw
        remember(key, raw)
    m.policy_version, m.calendar = e.terms.policy_version, key


def _clock(p: Pending, m: CaseMemory, e: Any) -> None:
    name = e.clock
    old = m.clocks.get(name)
    p.dirty[m.case_id].add(name)
    changes = clock_changes(calendar(m), old, e)
    if e.type == "SlaClockStarted":
        if old is not None and m.case_id in p.latest:  # the cycle it ends was current in this batch
            previous = p.latest[m.case_id]
            p.superseded[(m.case_id, name, old.cycle)] = clock_row(m, old, previous.at)
        m.clocks[name] = ClockMemory(**changes)
        return
    assert old is not None
    for key, value in changes.items():
        setattr(old, key, value)
    if e.type == "SlaClockBreached" and name not in m.breached:
        m.breached = sorted((*m.breached, name))


def _escalation(p: Pending, m: CaseMemory, e: Any) -> None:
    _set(m, field_changes(m, e))  # the level, and its owner (domain.transitions)
    kind = ESCALATION_KINDS[e.type]
    cause = getattr(e, "cause", None)
    # The engine's own reasons (a breach, an emergency, a bad survey) are kept; what a supervisor
    # wrote is personal free text, kept in the (sealed) event store only.
    reason = e.reason if kind == "escalated" and cause != "supervisor" else None
    p.appended["escalations"].append((
        m.case_id, m.version, iso(e.at), kind, e.level, getattr(e, "level_name", None), getattr(e, "owner", None),
        cause, getattr(e, "clock", None), reason, e.actor.id, e.actor.role))


HANDLERS: dict[str, Callable[[Pending, CaseMemory, Any], None] | None] = {
    "CaseOpened": _case_opened,
    **{kind: _by_rule(rule) for kind, rule in FIELD_RULES.items() if kind not in ESCALATION_KINDS},
    "CallbackAttempted": _callback, "SurveyRecorded": _survey, "SlaPolicyPinned": _pinned,
    **{kind: _clock for kind in CLOCK_EVENTS}, **{kind: _escalation for kind in ESCALATION_KINDS},
    # Facts no reporting column shows (beyond the case's event count and the staff's activity).
    **{kind: None for kind in ("RectificationRequired", "RectificationRecorded", "ReplyTimeAgreed",
                               "AppointmentBooked", "AppointmentConfirmed", "ServiceReportRecorded",
                               "SolutionConfirmed")},
}


# The rows kept per case and per clock cycle, as of the case's latest event.

def clock_row(m: CaseMemory, c: ClockMemory, at: datetime) -> tuple:
    return (m.case_id, c.name, c.cycle, c.state, c.target.total_seconds(), iso(c.started_at), iso(c.due),
            elapsed_at(calendar(m), c, at).total_seconds(), paused_at(c, at).total_seconds(),  # type: ignore[arg-type]
            iso(c.met_at), iso(c.breached_at), int(c.breached_at is not None),
            ",".join(f"{s:g}" for s in c.warned))


def clock_rows(p: Pending, m: CaseMemory, at: datetime) -> list[tuple]:
    """The rows of the case's clocks that may have changed in the batch: those an event changed, and
    those running or paused (their elapsed or paused time moves with every event of the case)."""
    dirty = p.dirty.get(m.case_id, ())
    return [clock_row(m, c, at) for name, c in m.clocks.items() if c.state in RUNNING or name in dirty]


def case_row(m: CaseMemory, latest: f.Fact) -> tuple:
    cal = calendar(m)

    def span(end: datetime | None, clock: str) -> tuple[float | None, float | None]:
        if end is None:
            return None, None
        # Business time as the case's own clock counted it (domain.clocks.elapsed_at), on the
        # calendar of the terms in force; without SLA terms, or without that clock, calendar time.
        c = m.clocks.get(clock) if m.policy_version is not None else None
        business = elapsed_at(cal, c, end) if c is not None else end - m.opened_at  # type: ignore[arg-type]
        return _seconds(end - m.opened_at), _seconds(business)

    first, first_b = span(m.first_response_at, "first_response")
    resolution, resolution_b = span(m.solved_at if m.closed_at is None else (m.solved_at or m.closed_at),
                                    "resolution")
    breached = m.breached
    return (m.case_id, m.source_system, m.external_id, m.stage, m.priority, m.tier, m.category, m.channel,
            m.customer_id, m.team, m.assignee, iso(m.opened_at), iso(m.first_response_at), iso(m.solved_at),
            iso(m.closed_at), m.closure_reason, first, first_b, resolution, resolution_b, m.escalation_level,
            m.reopen_count, m.clarification_rounds, m.notes_count,
            # Resolved at the first contact: the customer confirmed it (a follow-up period that ran out
            # unanswered is no evidence of resolution), never reopened, never asked back.
            int(m.closure_reason == "resolved" and m.reopen_count == 0 and m.clarification_rounds == 0),
            m.policy_version, *(int(name in breached) for name in CLOCK_NAMES), m.satisfaction,
            iso(latest.recorded_at), m.version)
