"""Each next-response cycle is measured and reported on its own, and a breached cycle stays breached
(the customer's next message used to wipe it). Worked by hand on a 24x7 UTC calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from casework.config import sqlite_env
from casework.policy import load_policy
from domain.lifecycle import decide, replay_on
from domain.model import Category, Channel, Priority, Tier
from projections import reports
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.factory import CUSTOMER, command, open_case

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_breached_next_reply_cycle_stays_breached_and_each_cycle_is_reported(tmp_path):
    # Urgent: next response within 0.5 h, round the clock (the shipped policy).
    terms = load_policy(None).terms_for(Priority.urgent, Tier.C, Category.fault, Channel.email)
    assert terms.targets["next_response"] == timedelta(minutes=30)
    store = sqlite_store(tmp_path / "events.db")
    steps = [
        (open_case(case_id="c1", priority="urgent", occurred_at=T0), T0),
        (command("respond", message="on it", occurred_at=T0 + timedelta(minutes=5)), None),
        # cycle 1: the customer writes at 09:10, the desk answers at 10:00 -> due 09:40, breached
        (command("record_customer_reply", CUSTOMER, message="still down", occurred_at=T0 + timedelta(minutes=10)), None),
        (command("respond", message="sorry", occurred_at=T0 + timedelta(minutes=60)), None),
        # cycle 2: the customer writes at 10:05, the desk answers at 10:20 -> due 10:35, in time
        (command("record_customer_reply", CUSTOMER, message="ok", occurred_at=T0 + timedelta(minutes=65)), None),
        (command("respond", message="done", occurred_at=T0 + timedelta(minutes=80)), None),
    ]
    state = None
    for cmd, _ in steps:
        events = decide(state, cmd, T0 + timedelta(hours=2), terms if state is None else None)
        store.append(cmd.command_id, events)
        state = replay_on(state, events)

    # First response at 09:05 (due 09:15) in time; cycle 2 met in time; cycle 1's breach stays.
    assert state.sla_breached == ["next_response"]
    breaches = [e for e in store.history("c1") if e.type == "SlaClockBreached"]
    assert [(b.clock, b.at) for b in breaches if b.clock == "next_response"] == [
        ("next_response", T0 + timedelta(minutes=40))]

    view = open_view(sqlite_env(tmp_path / "reporting.db"))
    ReportProjection(store, view).catch_up()
    rows = view.query("SELECT clock, cycle, state, breached FROM {sla_clocks} WHERE clock = 'next_response' "
                      "ORDER BY cycle")
    assert rows == [{"clock": "next_response", "cycle": 1, "state": "met", "breached": 1},
                    {"clock": "next_response", "cycle": 2, "state": "met", "breached": 0}]
    [case] = view.query("SELECT next_response_breached FROM {cases}")
    assert case["next_response_breached"] == 1
    [urgent] = reports.next_replies(view)
    assert (urgent["priority"], urgent["cycles"], urgent["answered"], urgent["breached"], urgent["in_time_pct"]) == (
        "urgent", 2, 2, 1, 50.0)
