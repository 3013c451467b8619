"""Every command in every stage: allowed where the service process allows it, refused elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.lifecycle import CommandRefused, decide, replay, replay_on
from domain.model import ENGINE, ClosureReason, Stage
from tests.factory import AGENT, CUSTOMER, SUPERVISOR, command, open_case

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

SAMPLE = {
    "request_clarification": {"question": "Which model?"},
    "record_customer_reply": {"message": "Model X"},
    "respond": {"message": "On it"},
    "retriage": {"priority": "high", "reason": "VIP"},
    "reassign": {"assignee": "agent-bob"},
    "propose_solution": {"summary": "Reset"},
    "revise_solution": {"summary": "Reset and update"},
    "start_follow_up": {},
    "confirm_solution": {},
    "reject_solution": {"reason": "still broken"},
    "add_note": {"text": "called"},
    "close": {"reason": "cancelled"},
}

OPEN = {"intake", "needs_clarification", "response", "solution", "follow_up"}
# Written out from the service process (seeds §1.1, §1.2), not derived from the engine's own table.
# Help desks let an agent remind a customer who owes an answer (a question again, or a message), and
# answer a customer's question while a solution is proposed or followed up (docs/sla.md).
ALLOWED = {
    "request_clarification": {"intake", "needs_clarification", "response", "solution"},
    "record_customer_reply": OPEN,
    "respond": {"intake", "needs_clarification", "response", "solution", "follow_up"},
    "retriage": OPEN,
    "reassign": OPEN,
    "propose_solution": {"intake", "response"},
    "revise_solution": {"solution", "follow_up"},
    "start_follow_up": {"solution"},
    "confirm_solution": {"solution", "follow_up"},
    "reject_solution": {"solution", "follow_up"},
    "add_note": OPEN,
    "close": OPEN,
}

# A path of commands that brings a fresh case to each stage.
PATHS = {
    "intake": [],
    "needs_clarification": [("request_clarification", AGENT)],
    "response": [("respond", AGENT)],
    "solution": [("propose_solution", AGENT)],
    "follow_up": [("propose_solution", AGENT), ("start_follow_up", AGENT)],
    "closed": [("close", AGENT)],
}


def case_in(stage: str):
    events = decide(None, open_case(case_id="case-1"), NOW)
    state = replay(events)
    for kind, actor in PATHS[stage]:
        events += decide(state, command(kind, actor, **SAMPLE[kind]), NOW)
        state = replay(events)
    assert state.stage.value == stage
    return state


def actor_for(kind: str):
    return CUSTOMER if kind in ("confirm_solution", "reject_solution", "record_customer_reply") else AGENT


@pytest.mark.parametrize("stage", [s.value for s in Stage])
@pytest.mark.parametrize("kind", sorted(SAMPLE))
def test_command_is_allowed_exactly_in_its_stages(stage, kind):
    state = case_in(stage)
    cmd = command(kind, actor_for(kind), **SAMPLE[kind])
    if stage in ALLOWED[kind]:
        assert decide(state, cmd, NOW)
    else:
        with pytest.raises(CommandRefused) as err:
            decide(state, cmd, NOW)
        assert f"'{kind}'" in err.value.message and f"'{stage}'" in err.value.message
        assert err.value.code in ("not_allowed_in_stage", "case_closed")


@pytest.mark.parametrize("kind,actor", [
    ("propose_solution", CUSTOMER), ("respond", CUSTOMER), ("close", CUSTOMER), ("retriage", CUSTOMER),
])
def test_customers_cannot_do_staff_work(kind, actor):
    with pytest.raises(CommandRefused) as err:
        decide(case_in("response"), command(kind, actor, **SAMPLE[kind]), NOW)
    assert err.value.code == "role_not_allowed"


def test_supervisor_and_agent_may_record_what_the_customer_said():
    assert decide(case_in("follow_up"), command("confirm_solution", AGENT), NOW)
    with pytest.raises(CommandRefused):
        decide(case_in("follow_up"), command("confirm_solution", SUPERVISOR), NOW)


def test_clarification_returns_to_the_stage_it_interrupted():
    for stage in ("intake", "response", "solution"):
        state = case_in(stage)
        events = decide(state, command("request_clarification", question="?"), NOW)
        events += decide(replay_on(state, events), command("record_customer_reply", CUSTOMER, message="!"), NOW)
        assert replay_on(state, events).stage.value == stage


def test_confirmation_closes_as_resolved_and_rejection_reopens():
    confirmed = decide(case_in("follow_up"), command("confirm_solution", CUSTOMER), NOW)
    assert [e.type for e in confirmed] == ["SolutionConfirmed", "CaseClosed"]
    assert confirmed[-1].reason is ClosureReason.resolved

    state = case_in("solution")
    reopened = replay_on(state, decide(state, command("reject_solution", CUSTOMER, reason="no"), NOW))
    assert (reopened.stage, reopened.reopen_count, reopened.solved_at) == (Stage.response, 1, None)


@pytest.mark.parametrize("stage,allowed", [("needs_clarification", True), ("follow_up", True),
                                           ("intake", False), ("response", False)])
def test_no_response_closure_only_while_waiting_on_the_customer(stage, allowed):
    cmd = command("close", reason="no_response")
    if allowed:
        assert decide(case_in(stage), cmd, NOW)[0].reason is ClosureReason.no_response
    else:
        with pytest.raises(CommandRefused, match="no_response"):
            decide(case_in(stage), cmd, NOW)


@pytest.mark.parametrize("reason", ["resolved", "resolved_unconfirmed"])
def test_resolved_closure_only_through_confirmation_or_the_timer(reason):
    with pytest.raises(CommandRefused) as err:
        decide(case_in("follow_up"), command("close", reason=reason), NOW)
    assert err.value.code == "not_confirmed"


def test_follow_up_expiry_is_for_the_engine_only_and_only_in_follow_up():
    engine = ENGINE
    # Without a policy the period is 7 days from the follow-up's start (NOW).
    later = NOW + timedelta(days=7)
    events = decide(case_in("follow_up"), command("expire_follow_up", engine), later)
    assert events[0].reason is ClosureReason.resolved_unconfirmed and events[0].at == later
    with pytest.raises(CommandRefused) as early:  # a stale timer may not close the case before its time
        decide(case_in("follow_up"), command("expire_follow_up", engine), later - timedelta(seconds=1))
    assert early.value.code == "not_due"
    with pytest.raises(CommandRefused):
        decide(case_in("follow_up"), command("expire_follow_up", AGENT), NOW)
    with pytest.raises(CommandRefused):
        decide(case_in("solution"), command("expire_follow_up", engine), NOW)


def test_opening_twice_and_commands_before_open_are_refused():
    with pytest.raises(CommandRefused, match="already open"):
        decide(case_in("intake"), open_case(case_id="case-1"), NOW)
    with pytest.raises(CommandRefused, match="not open"):
        decide(None, command("add_note", text="x"), NOW)


def test_occurred_at_from_the_sender_is_kept_beside_the_engine_time():
    then = datetime(2012, 3, 15, 21, 23, tzinfo=UTC)
    opened = replay(decide(None, open_case(case_id="case-1", occurred_at=datetime(2012, 3, 15, 20, 0, tzinfo=UTC)),
                           NOW))
    [event] = decide(opened, command("respond", message="hi", occurred_at=then), NOW)
    assert (event.at, event.recorded_at) == (then, NOW)

