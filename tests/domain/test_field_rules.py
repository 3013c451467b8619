"""domain.transitions: the lifecycle fields each event sets, the one home of those rules for the
domain's `evolve` and the reporting projection's memory (tests/projections hold the projection's
tables equal to `evolve`'s state, so these worked examples, written by hand from the service
process, are what holds the rules themselves).

The state and the event are plain namespaces here: the rules read both by attribute only, as the
projection passes its own record of a case and its own decoding of an event."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from domain.model import Stage
from domain.transitions import FIELD_RULES, field_changes

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
EARLIER = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def state(**fields) -> SimpleNamespace:
    base = {"stage": "response", "clarification_rounds": 0, "first_response_at": None, "notes_count": 0}
    return SimpleNamespace(**{**base, **fields})


def event(kind: str, **fields) -> SimpleNamespace:
    return SimpleNamespace(type=kind, at=AT, **fields)


CASES = [
    # A first question is a new round and the first response.
    ("first question", state(stage="intake"), event("ClarificationRequested"),
     {"stage": "needs_clarification", "clarification_rounds": 1, "first_response_at": AT}),
    # A reminder while waiting is not a new round; the first response stays the earlier one.
    ("reminder", state(stage="needs_clarification", clarification_rounds=2, first_response_at=EARLIER),
     event("ClarificationRequested"), {"stage": "needs_clarification"}),
    # A second question after the customer answered is a new round.
    ("second round", state(stage="response", clarification_rounds=1, first_response_at=EARLIER),
     event("ClarificationRequested"), {"stage": "needs_clarification", "clarification_rounds": 2}),
    ("reply resumes", state(stage="needs_clarification"), event("CustomerReplied", resumed_stage="solution"),
     {"stage": "solution"}),
    ("reply while working", state(stage="response"), event("CustomerReplied", resumed_stage=None), {}),
    ("first response to a new case", state(stage="intake"), event("ResponseSent", first_response=True),
     {"stage": "response", "first_response_at": AT}),
    ("reminder in response", state(stage="response", first_response_at=EARLIER),
     event("ResponseSent", first_response=False), {"stage": "response"}),
    # An answer during the solution or follow-up leaves the case where it is.
    ("answer in follow-up", state(stage="follow_up", first_response_at=EARLIER),
     event("ResponseSent", first_response=False), {}),
    ("reply resumes intake", state(stage="needs_clarification"), event("CustomerReplied", resumed_stage="intake"),
     {"stage": "intake"}),
    # A reminder while waiting on the customer leaves the case waiting.
    ("reminder while waiting", state(stage="needs_clarification", first_response_at=EARLIER),
     event("ResponseSent", first_response=False), {}),
    ("answer during the solution", state(stage="solution", first_response_at=EARLIER),
     event("ResponseSent", first_response=False), {}),
    ("retriage", state(priority="normal", category="hardware"), event("CaseRetriaged", priority="high", category="billing"),
     {"priority": "high", "category": "billing"}),
    ("reassign", state(), event("CaseReassigned", assignee="agent-bob", team="tier2"),
     {"assignee": "agent-bob", "team": "tier2"}),
    # A solution with no response before it is the first response.
    ("solution first", state(stage="intake"), event("SolutionProposed"),
     {"stage": "solution", "solved_at": AT, "first_response_at": AT}),
    ("solution after a response", state(first_response_at=EARLIER), event("SolutionProposed"),
     {"stage": "solution", "solved_at": AT}),
    # Back in intake after a question was answered: the question was the first response.
    ("solution from intake after a question", state(stage="intake", first_response_at=EARLIER),
     event("SolutionProposed"), {"stage": "solution", "solved_at": AT}),
    ("revision", state(stage="follow_up", first_response_at=EARLIER), event("SolutionRevised"),
     {"stage": "solution", "solved_at": AT}),
    ("follow-up", state(stage="solution"), event("FollowUpStarted"), {"stage": "follow_up"}),
    ("rejected", state(stage="follow_up"), event("SolutionRejected", reopen_count=2),
     {"stage": "response", "reopen_count": 2, "solved_at": None}),
    ("note", state(notes_count=3), event("NoteAdded"), {"notes_count": 4}),
    ("reopened", state(stage="closed"), event("CaseReopened", stage="response", reopen_count=1),
     {"stage": "response", "reopen_count": 1, "closed_at": None, "closure_reason": None, "solved_at": None}),
    ("closed", state(stage="follow_up"), event("CaseClosed", reason="resolved"),
     {"stage": "closed", "closed_at": AT, "closure_reason": "resolved"}),
    ("escalated to an owner", state(), event("CaseEscalated", level=2, owner="sup-1"),
     {"escalation_level": 2, "assignee": "sup-1"}),
    # A level without an owner leaves the assignee as it was.
    ("escalated, no owner", state(), event("CaseEscalated", level=1, owner=None), {"escalation_level": 1}),
    ("de-escalated", state(), event("CaseDeEscalated", level=0, owner=None), {"escalation_level": 0}),
    ("de-escalated to an owned level", state(), event("CaseDeEscalated", level=1, owner="team-lead-on-duty"),
     {"escalation_level": 1, "assignee": "team-lead-on-duty"}),
    ("reopened to the solution", state(stage="closed"), event("CaseReopened", stage="solution", reopen_count=2),
     {"stage": "solution", "reopen_count": 2, "closed_at": None, "closure_reason": None, "solved_at": None}),
    # Events without a rule set no lifecycle field (the clocks have theirs: domain.clocks.clock_changes).
    ("acknowledged", state(), event("EscalationAcknowledged", level=2), {}),
    ("a clock event", state(), event("SlaClockWarned", clock="resolution"), {}),
    ("a survey", state(), event("SurveyRecorded"), {}),
]


@pytest.mark.parametrize(("name", "before", "fact", "expected"), CASES, ids=[c[0] for c in CASES])
def test_fields_each_event_sets(name, before, fact, expected):
    assert field_changes(before, fact) == expected


def test_a_stage_is_a_member_equal_to_its_text():
    # evolve needs the member (the domain's state compares stages by identity); a read model keeps the text.
    for before, fact in ((state(stage="intake"), event("ResponseSent", first_response=False)),
                         (state(), event("CustomerReplied", resumed_stage="follow_up")),
                         (state(stage="closed"), event("CaseReopened", stage="solution", reopen_count=1))):
        stage = field_changes(before, fact)["stage"]
        assert type(stage) is Stage and stage.value == stage


def test_every_rule_has_a_worked_example():
    assert set(FIELD_RULES) <= {fact.type for _, _, fact, _ in CASES}
