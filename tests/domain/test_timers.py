"""The timer a case sleeps on: the earliest deadline that would do something."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casework.policy import load_policy
from domain.lifecycle import decide, replay_on
from domain.timers import next_timer
from tests.factory import CUSTOMER, command, open_case

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
BAD = {"scores": {"attitude": 20, "problem_solving": 30, "response_speed": 40}}


def in_follow_up():
    opening = open_case(case_id="t1")
    events = decide(None, opening, NOW, load_policy().terms_for("normal", "B", "fault", "email"))
    state = replay_on(None, events)
    for cmd in (command("respond", message="m"), command("propose_solution", summary="s"), command("start_follow_up")):
        state = replay_on(state, decide(state, cmd, NOW))
    return state


def test_a_case_in_follow_up_wakes_for_its_first_callback():
    state = in_follow_up()
    assert next_timer(state) == (NOW + timedelta(hours=24), "attempt_callback")


def test_an_open_case_wakes_for_its_next_sla_deadline():
    state = replay_on(None, decide(None, open_case(case_id="t2"), NOW,
                                   load_policy().terms_for("urgent", "B", "fault", "email")))
    when, kind = next_timer(state)
    assert kind == "check_deadlines" and when == NOW + timedelta(minutes=7, seconds=30)  # 50 % of 15 min


def test_a_pending_rectification_holds_the_follow_up_timers_so_nothing_spins_or_closes():
    state = in_follow_up()
    state = replay_on(state, decide(state, command("confirm_solution", CUSTOMER, survey=BAD), NOW))
    assert state.rectification_pending and state.stage.value == "follow_up"
    assert next_timer(state) is None or next_timer(state)[1] == "check_deadlines"
