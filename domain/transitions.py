"""What each event does to a case's lifecycle fields: its stage, clarification rounds, first
response, solved and closed instants, closure reason, reopenings, notes, triage, assignment and
escalation level. The one home of these rules: `evolve` applies them to the domain's CaseState
(adding the fields only the engine keeps: the stage to return to, due instants, the solution's
text...), the reporting projection to its own memory of a case (projections/handlers.py), so a
changed rule changes both.

As `domain.clocks.clock_changes` does for the clocks, a rule reads the state and the event by
attribute only (the state's fields above; the event's `type`, `at` and the fields of its type), so
a read model may pass its own record of the case and its own decoding of the event. A rule returns
the fields it sets; a stage is a `Stage` member (equal to its text, which a read model may keep).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.model import Stage

Rule = Callable[[Any, Any], dict[str, Any]]


def _clarification(s: Any, e: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {"stage": Stage.needs_clarification}
    if s.stage != Stage.needs_clarification:  # a reminder is not a new round
        changes["clarification_rounds"] = s.clarification_rounds + 1
    if s.first_response_at is None:  # asking is the first response (its clock is met)
        changes["first_response_at"] = e.at
    return changes


def _replied(s: Any, e: Any) -> dict[str, Any]:
    # The customer's answer resumes the stage the question interrupted; any other reply leaves it.
    return {} if e.resumed_stage is None else {"stage": Stage(e.resumed_stage)}


def _response(s: Any, e: Any) -> dict[str, Any]:
    # A response moves a new case on; a reminder while waiting, or an answer during solution or
    # follow-up, leaves the case where it is.
    changes: dict[str, Any] = {"stage": Stage.response} if s.stage in (Stage.intake, Stage.response) else {}
    if e.first_response:
        changes["first_response_at"] = e.at
    return changes


def _proposed(s: Any, e: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {"stage": Stage.solution, "solved_at": e.at}
    if s.first_response_at is None:  # a solution is the first response (its clock is met)
        changes["first_response_at"] = e.at
    return changes


def _rejected(s: Any, e: Any) -> dict[str, Any]:
    return {"stage": Stage.response, "reopen_count": e.reopen_count, "solved_at": None}


def _reopened(s: Any, e: Any) -> dict[str, Any]:
    # Back to work, waiting on staff: the customer's reply or rejection follows in the same step.
    return {"stage": Stage(e.stage), "reopen_count": e.reopen_count, "closed_at": None, "closure_reason": None,
            "solved_at": None}


def _escalation(s: Any, e: Any) -> dict[str, Any]:
    # The new level's owner takes the case; a level without one leaves the assignee.
    return {"escalation_level": e.level, "assignee": e.owner} if e.owner else {"escalation_level": e.level}


FIELD_RULES: dict[str, Rule] = {
    "ClarificationRequested": _clarification,
    "CustomerReplied": _replied,
    "ResponseSent": _response,
    "CaseRetriaged": lambda s, e: {"priority": e.priority, "category": e.category},
    "CaseReassigned": lambda s, e: {"assignee": e.assignee, "team": e.team},
    "SolutionProposed": _proposed,
    "SolutionRevised": lambda s, e: {"stage": Stage.solution, "solved_at": e.at},
    "FollowUpStarted": lambda s, e: {"stage": Stage.follow_up},
    "SolutionRejected": _rejected,
    "NoteAdded": lambda s, e: {"notes_count": s.notes_count + 1},
    "CaseReopened": _reopened,
    "CaseClosed": lambda s, e: {"stage": Stage.closed, "closed_at": e.at, "closure_reason": e.reason},
    "CaseEscalated": _escalation,
    "CaseDeEscalated": _escalation,
}


def field_changes(state: Any, event: Any) -> dict[str, Any]:
    """The lifecycle fields `event` sets on `state` (none for an event without a rule)."""
    rule = FIELD_RULES.get(event.type)
    return rule(state, event) if rule is not None else {}
