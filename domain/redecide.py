"""Re-deciding a stored case history under other SLA terms, in memory (the what-if of issue 13).

A case's history holds two kinds of facts. Inputs: what people and gateways did (the opening,
replies, responses, solutions, closes...) and the engine's follow-up steps, which do not depend on
the SLA targets. Consequences: what the SLA policy made of them - the pinned terms, every clock
event, and the escalations that breaches, warnings and emergencies brought. Re-deciding keeps the
inputs as they are and recomputes the consequences with the same rules the engine used
(domain/clocks.py), evaluating the clocks at each instant before the next input, as `decide` does.
Escalations by supervisors and their acknowledgements are people's answers to the recorded
escalations: under other terms they may not make sense, so they are left out of the re-decision.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from domain import events as e
from domain.clocks import clock_events, opening_events, passing_time_events, retarget_events
from domain.escalation import escalation_to, top_level
from domain.evolve import SLA_EVENTS, evolve, replay_on
from domain.model import CaseState
from domain.sla import SlaTerms

# (the case as it is, the terms the history pinned at this point or None) -> the terms to hold it to
TermsFor = Callable[[CaseState, SlaTerms | None], SlaTerms | None]
_BASE = ("case_id", "command_id", "command_digest", "actor", "on_behalf_of", "at", "recorded_at")


def is_input(event: e.Event) -> bool:
    return not isinstance(event, SLA_EVENTS)


def redecide(history: list[e.Event], terms_for: TermsFor, until: datetime) -> list[e.Event]:
    """The case's history with its SLA consequences decided again under `terms_for`, the clocks
    evaluated up to `until` (inclusive) for a case still open then."""
    out: list[e.Event] = []
    state: CaseState | None = None
    pinned: dict[str, SlaTerms] = {}  # command id -> the terms the history pinned with it
    retriaged = {x.command_id for x in history if isinstance(x, e.CaseRetriaged)}
    for x in history:
        if isinstance(x, e.SlaPolicyPinned):
            pinned.setdefault(x.command_id, x.terms)
    reapplied: set[str] = set()  # command ids whose pinned terms are taken care of
    for event in history:
        if event.at > until:
            break
        base = {k: getattr(event, k) for k in _BASE}
        if isinstance(event, e.CaseOpened):
            reapplied.add(event.command_id)
            opened = evolve(None, event)
            terms = terms_for(opened, pinned.get(event.command_id))
            new: list[e.Event] = [event]
            if terms is not None:
                new += opening_events(base, terms)
                opened = replay_on(None, new)
                if opened.category in terms.emergency_categories:
                    new.append(escalation_to(opened, base, top_level(opened), "emergency",
                                             reason=opened.category.value))
            out += new
            state = replay_on(None, new)
            continue
        assert state is not None, "a case history starts with its opening"
        if isinstance(event, e.SlaPolicyPinned) and event.command_id not in retriaged | reapplied:
            reapplied.add(event.command_id)  # a supervisor's reapply_policy: the terms change here
            new = _passing(state, base)
            state = replay_on(state, new)
            terms = terms_for(state, event.terms)
            if terms is not None:
                retarget = retarget_events(state, base, terms, reason="policy re-applied")
                state = replay_on(state, retarget)
                new += retarget
            out += new
            continue
        if not is_input(event):
            continue
        new = _passing(state, base)
        state = replay_on(state, new)
        after = evolve(state, event)
        implied = clock_events(state, after, event, base)
        if isinstance(event, e.CaseRetriaged) and state.sla is not None:
            terms = terms_for(after, pinned.get(event.command_id))
            if terms is not None:
                implied += retarget_events(after, base, terms, reason=(
                    f"re-triaged to {event.priority.value}/{event.category.value}"))
        out += [*new, event, *implied]
        state = replay_on(after, implied)
    if state is not None and not state.is_closed:
        last = {k: getattr(out[-1], k) for k in _BASE}
        out += passing_time_events(state, {**last, "at": until, "recorded_at": until}, until)
    return out


def _passing(state: CaseState, base: dict) -> list[e.Event]:
    return passing_time_events(state, base, base["at"], inclusive=False)
