"""Lifecycle fields on paths the service process allows but no other test walked (review of 199200c).

domain.transitions' rules are now shared by `evolve` and the reporting projection, so the
projection-equals-evolve oracles (tests/projections) no longer hold the rules themselves: a wrong
rule is wrong on both sides. Each test here is worked by hand from the service process and kills
a mutation of one rule that every other test file let through (the review's mutants M05, M06, M09,
M18); tests/domain/test_field_rules.py has the same rules as worked examples of the rule alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from domain.lifecycle import decide, replay_on
from domain.model import Stage
from tests.factory import CUSTOMER, command, open_case

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def run(steps):
    """Each (minutes after T0, command) decided at that instant and applied; the final state."""
    state = None
    for minutes, cmd in steps:
        state = replay_on(state, decide(state, cmd, T0 + timedelta(minutes=minutes)))
    return state


def test_a_reminder_while_waiting_on_the_customer_leaves_the_case_waiting():
    # Respond is allowed in needs_clarification (a reminder): the case still waits on the customer.
    state = run([(0, open_case(case_id="case-r")), (10, command("request_clarification", question="Which unit?")),
                 (60, command("respond", message="A reminder: which unit?"))])
    assert state.stage is Stage.needs_clarification
    assert (state.clarification_rounds, state.first_response_at) == (1, T0 + timedelta(minutes=10))


def test_an_answer_while_the_solution_is_proposed_leaves_it_proposed():
    state = run([(0, open_case(case_id="case-r")), (10, command("respond", message="On it")),
                 (20, command("propose_solution", summary="Replace the toner")),
                 (30, command("respond", message="Yes, the black one"))])
    assert state.stage is Stage.solution
    assert (state.first_response_at, state.solved_at) == (T0 + timedelta(minutes=10), T0 + timedelta(minutes=20))


def test_a_solution_after_a_question_asked_in_intake_keeps_the_question_as_the_first_response():
    # The question is the first response; the reply resumes intake; the solution is not a second first response.
    state = run([(0, open_case(case_id="case-r")), (10, command("request_clarification", question="Which unit?")),
                 (20, command("record_customer_reply", CUSTOMER, message="Unit 7")),
                 (30, command("propose_solution", summary="Reset unit 7"))])
    assert state.stage is Stage.solution
    assert (state.first_response_at, state.solved_at) == (T0 + timedelta(minutes=10), T0 + timedelta(minutes=30))


def test_de_escalating_to_a_level_with_an_owner_hands_the_case_to_that_owner():
    # The shipped ladder: agent (no owner), team_lead (team-lead-on-duty), service_manager (service-manager).
    from casework.policy import load_policy
    from tests.factory import SUPERVISOR
    terms = load_policy(None).terms_for("normal", "B", "fault", "email")
    state = replay_on(None, decide(None, open_case(case_id="case-d"), T0, terms))
    for minutes, cmd in ((10, command("escalate", SUPERVISOR, reason="upset", level=2)),
                         (20, command("de_escalate", SUPERVISOR, reason="calmer"))):
        state = replay_on(state, decide(state, cmd, T0 + timedelta(minutes=minutes)))
    assert (state.escalation_level, state.assignee) == (1, "team-lead-on-duty")
