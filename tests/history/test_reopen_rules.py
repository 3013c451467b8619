"""Reopen after close, decided by the rules (domain/reopen.py), with instants worked by hand.

The shipped policy: catch-all 8/8/48 business hours on the `business` calendar (Asia/Shanghai,
Mon-Fri 09:00-12:00 and 13:00-18:00; no holiday in March 2026), reopen window 168 h."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from casework.policy import load_policy
from domain import events as e
from domain.lifecycle import CommandRefused, decide, replay_on
from domain.model import Stage
from domain.reopen import follow_up_case_id, follow_up_opening
from tests.factory import AGENT, CUSTOMER, command, open_case

SH = ZoneInfo("Asia/Shanghai")
POLICY = load_policy(None)


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SH)


def terms_for(cmd):
    return POLICY.terms_for(cmd.priority, cmd.customer.tier, cmd.category, cmd.channel)


def closed_case(reason: str = "confirm"):
    """Opened Mon 2 Mar 09:00, answered 10:00, solved 11:00 (resolution met after 2 business hours),
    closed 11:30 by the customer's confirmation (or cancelled by staff)."""
    opening = open_case(case_id="c-1")
    events = decide(None, opening, t(2, 9), terms_for(opening))
    state = replay_on(None, events)
    steps = [(command("respond", message="on it"), t(2, 10)),
             (command("propose_solution", summary="new cable"), t(2, 11))]
    steps.append((command("confirm_solution", CUSTOMER), t(2, 11, 30)) if reason == "confirm"
                 else (command("close", reason="cancelled", note="withdrawn"), t(2, 11, 30)))
    for cmd, at in steps:
        new = decide(state, cmd, at)
        events += new
        state = replay_on(state, new)
    assert state.stage is Stage.closed and state.closed_at == t(2, 11, 30)
    return state


def test_a_reply_within_the_window_reopens_with_the_resolution_clock_continued():
    state = closed_case()
    out = decide(state, command("record_customer_reply", CUSTOMER, message="it broke again"), t(3, 10))
    assert [type(x).__name__ for x in out] == ["CaseReopened", "SlaClockResumed", "CustomerReplied",
                                                "SlaClockStarted"]
    reopened, resumed, _, started = out
    assert (reopened.reopen_count, reopened.previous_closure.value, reopened.stage) == (1, "resolved", Stage.response)
    # 48 - 2 = 46 business hours left from Tue 3 Mar 10:00: Tue 7, Wed-Fri 24 (31), Mon 9 Mar 8 (39),
    # Tue 10 Mar 09:00-12:00 and 13:00-17:00 (46).
    assert resumed.clock == "resolution" and resumed.due == t(10, 17)
    # The reply needs an answer: next_response, 8 business hours: Tue 7 h, Wed 09:00-10:00.
    assert (started.clock, started.cycle, started.due) == ("next_response", 1, t(4, 10))
    after = replay_on(state, out)
    assert (after.stage, after.reopen_count, after.closed_at, after.closure_reason) == (Stage.response, 1, None, None)


def test_a_rejection_within_the_window_reopens_once():
    state = closed_case()
    out = decide(state, command("reject_solution", CUSTOMER, reason="still broken"), t(6, 10))
    assert [type(x).__name__ for x in out] == ["CaseReopened", "SlaClockResumed", "SolutionRejected"]
    after = replay_on(state, out)
    assert (after.stage, after.reopen_count) == (Stage.response, 1)
    assert out[2].reopen_count == 1  # counted once, not once by the reopen and again by the rejection


def test_the_window_is_168_hours_after_the_close():
    state = closed_case()
    # Closed Mon 2 Mar 11:30 + 168 h = Mon 9 Mar 11:30: still reopens at that instant, not a minute later.
    assert isinstance(decide(state, command("record_customer_reply", CUSTOMER, message="x"), t(9, 11, 30))[0],
                      e.CaseReopened)
    with pytest.raises(CommandRefused) as late:
        decide(state, command("record_customer_reply", CUSTOMER, message="x"), t(9, 11, 31))
    assert late.value.code == "reopen_window_passed" and "2026-03-09T11:30:00+08:00" in late.value.message


def test_staff_commands_and_cancelled_cases_stay_closed():
    with pytest.raises(CommandRefused) as staff:
        decide(closed_case(), command("respond", message="hello?"), t(3, 10))
    assert staff.value.code == "case_closed"
    with pytest.raises(CommandRefused) as cancelled:
        decide(closed_case("cancel"), command("record_customer_reply", CUSTOMER, message="x"), t(3, 10))
    assert cancelled.value.code == "case_closed"


def test_a_follow_up_case_links_to_the_old_one_and_a_retry_names_the_same_case():
    state = closed_case()
    late = command("record_customer_reply", CUSTOMER, message="broken again, weeks later")
    opening = follow_up_opening(state, late)
    assert opening.case_id == follow_up_case_id("c-1", late.command_id) == follow_up_opening(state, late).case_id
    assert opening.case_id != follow_up_case_id("c-1", "another-command")
    opened = decide(None, opening, t(30, 10), terms_for(opening))
    assert opened[0].follow_up_of == "c-1" and opened[0].description == "broken again, weeks later"
    assert replay_on(None, opened).follow_up_of == "c-1"


def test_two_replies_decided_on_the_same_closed_version_reopen_once(any_store):
    """Two replies on the closed case at once, each from a sender that saw the closed version: the
    store decides them one after the other (expected-version append), so the case reopens once."""
    store = any_store
    cid = f"c-{uuid.uuid4()}"
    opening = open_case(case_id=cid)
    store.execute(cid, opening, t(2, 9), 0, terms_for(opening))
    for cmd, at in [(command("respond", message="on it"), t(2, 10)),
                    (command("propose_solution", summary="fix"), t(2, 11)),
                    (command("confirm_solution", CUSTOMER), t(2, 11, 30))]:
        assert store.execute(cid, cmd, at, store.state(cid).version).refusal is None
    closed = store.state(cid).version
    start = threading.Barrier(2)

    def reply(text: str):
        start.wait()
        return store.execute(cid, command("record_customer_reply", CUSTOMER, message=text), t(3, 10), closed)

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(reply, ["a", "b"]))
    assert all(o.refusal is None for o in outcomes)
    history = store.history(cid)
    assert sum(isinstance(x, e.CaseReopened) for x in history) == 1
    assert sorted(x.message for x in history if isinstance(x, e.CustomerReplied)) == ["a", "b"]
    assert store.state(cid).reopen_count == 1
