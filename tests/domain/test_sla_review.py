"""Regression tests for the SLA review of issue 10 (each names the reviewer's repro). Expected values
are worked by hand from docs/sla.md and the shipped policy, never read back from the engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from casework.policy import load_policy
from domain.lifecycle import CommandRefused, decide, replay_on
from domain.model import ENGINE
from tests.factory import SUPERVISOR, command, open_case

SH = ZoneInfo("Asia/Shanghai")
SHIPPED = load_policy(None)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def opened(when: str, **fields):
    cmd = open_case(case_id="case-r", **fields)
    terms = SHIPPED.terms_for(cmd.priority, cmd.customer.tier, cmd.category, cmd.channel)
    events = decide(None, cmd, at(when), terms)
    return replay_on(None, events), events


# -- item 1: terms for a case shape the case no longer has (t01) --------------------------------------

def test_terms_chosen_for_another_priority_are_refused_stale():
    state, _ = opened("2026-03-02 09:00")  # normal / B / fault / email
    urgent = SHIPPED.terms_for("urgent", "B", "fault", "email")
    normal = SHIPPED.terms_for("normal", "B", "fault", "email")
    # A re-triage to urgent with the terms read for the case as it was (normal): refused.
    with pytest.raises(CommandRefused) as refused:
        decide(state, command("retriage", priority="urgent", reason="down"), at("2026-03-02 09:05"), normal)
    assert refused.value.code == "stale_terms"
    # A reapply_policy decided after a re-triage to urgent, with terms read for normal: refused.
    out = decide(state, command("retriage", priority="urgent", reason="down"), at("2026-03-02 09:05"), urgent)
    state = replay_on(state, out)
    with pytest.raises(CommandRefused) as refused:
        decide(state, command("reapply_policy", SUPERVISOR, reason="policy"), at("2026-03-02 09:06"), normal)
    assert refused.value.code == "stale_terms"
    # The terms for the case as it is are taken: urgent is 15 min round the clock (rule table).
    out = decide(state, command("reapply_policy", SUPERVISOR, reason="policy"), at("2026-03-02 09:06"), urgent)
    assert replay_on(state, out).sla.targets["first_response"] == timedelta(minutes=15)


# -- item 7: a return-visit plan's first visit is an instant (r05, t03) ------------------------------

@pytest.mark.parametrize("first_due", ["2026-12-01T09:00", "9999-10-01T09:00:00+08:00", "0001-01-01T00:00:00+00:00",
                                       "2100-01-01T00:00:00+00:00"])
def test_a_plans_first_visit_needs_a_zone_and_a_sane_year(first_due):
    from pydantic import ValidationError

    from domain.return_visits import ReturnVisitPlan
    with pytest.raises(ValidationError) as refused:
        ReturnVisitPlan.model_validate({"customer": {"id": "ka-1", "name": "KA", "tier": "key_account"},
                                        "first_due": first_due})
    assert [err["loc"] for err in refused.value.errors()] == [("first_due",)]


def test_a_plans_first_visit_with_a_zone_is_kept_as_that_instant():
    from domain.return_visits import ReturnVisitPlan, due_of
    plan = ReturnVisitPlan.model_validate({"customer": {"id": "ka-1", "name": "KA", "tier": "key_account"},
                                           "first_due": "2026-12-01T09:00:00+08:00"})
    # 09:00 in Shanghai is 01:00 UTC; six months on (warranty) the same day and time.
    assert plan.first_due == at("2026-12-01 09:00")
    assert due_of(plan, 1) == at("2027-06-01 09:00")


# -- the reporting rows (items 6, 8, 12, 13) -----------------------------------------------------------

def drive(steps, **case):
    """Run (local time, kind, fields) steps through decide on the shipped policy; returns the events."""
    from domain.commands import COMMAND_ADAPTER
    from tests.factory import AGENT, CUSTOMER
    actors = {"record_customer_reply": CUSTOMER, "reject_solution": CUSTOMER, "check_deadlines": ENGINE}
    samples = {"respond": {"message": "m"}, "propose_solution": {"summary": "s"}, "reject_solution": {"reason": "no"},
               "retriage": {"reason": "t"}}
    state, events = opened(steps[0][0], **{**case, **steps[0][2]})
    for number, (when, kind, fields) in enumerate(steps[1:]):
        cmd = COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": f"c{number}", "actor": actors.get(kind, AGENT),
                                               **samples.get(kind, {}), **fields})
        terms = (SHIPPED.terms_for(cmd.priority or state.priority, state.customer.tier, cmd.category or state.category,
                                   state.channel) if kind == "retriage" else None)
        out = decide(state, cmd, at(when), terms)
        state = replay_on(state, out)
        events += out
    return events


def project(events):
    """The reporting rows as projections/view.py keeps them: clock rows upserted per (clock, cycle)."""
    from domain.evolve import evolve
    from projections.rows import case_row, clock_rows
    table, state, case = {}, None, None
    for ev in events:
        state = evolve(state, ev)
        for row in clock_rows(state, ev.at):
            table[(row["clock"], row["cycle"])] = row
        case = case_row(state, ev)
    return table, case


def test_each_agreed_reply_time_has_its_own_row():
    """r02: the first promise (due Wed 12:00) breached and was met late at 12:30; a second one
    agreed Wed 13:00 for Fri 12:00, renegotiated Thu 09:00 for Fri 17:00, met Thu 10:00."""
    events = drive([("2026-03-02 09:00", "open", {}), ("2026-03-02 09:20", "respond", {}),
                    ("2026-03-02 10:00", "agree_reply_time", {"reply_by": at("2026-03-04 12:00")}),
                    ("2026-03-04 12:00", "check_deadlines", {}), ("2026-03-04 12:30", "respond", {}),
                    ("2026-03-04 13:00", "agree_reply_time", {"reply_by": at("2026-03-06 12:00")}),
                    ("2026-03-05 09:00", "agree_reply_time", {"reply_by": at("2026-03-06 17:00")}),
                    ("2026-03-05 10:00", "respond", {})], category="complaint")
    table, case = project(events)
    rows = {cycle: (r["state"], r["breached"], r["met_at"]) for (clock, cycle), r in table.items()
            if clock == "agreed_reply"}
    assert rows == {0: ("met", 1, "2026-03-04T04:30:00.000000Z"),  # Wed 12:30 in Shanghai
                    1: ("cancelled", 0, None),
                    2: ("met", 0, "2026-03-05T02:00:00.000000Z")}  # Thu 10:00
    assert case["agreed_reply_breached"] == 1


def test_an_agreed_reply_row_counts_its_time_as_it_counts_its_target():
    """r11: agreed Mon 10:00 for Wed 12:00 (50 h of calendar time, the promise), met Wed 12:30:
    50.5 h used, on the same wall clock as the target."""
    events = drive([("2026-03-02 09:00", "open", {}), ("2026-03-02 09:20", "respond", {}),
                    ("2026-03-02 10:00", "agree_reply_time", {"reply_by": at("2026-03-04 12:00")}),
                    ("2026-03-04 12:00", "check_deadlines", {}), ("2026-03-04 12:30", "respond", {})],
                   category="complaint")
    row = project(events)[0][("agreed_reply", 0)]
    assert (row["target_seconds"], row["elapsed_business_seconds"], row["breached"]) == (50 * 3600, 50.5 * 3600, 1)


def test_the_case_row_takes_business_time_from_the_clock_on_the_calendars_it_ran_on():
    """r03: opened Mon 17:00 on office hours (1 h to 18:00), re-triaged to urgent (round the clock)
    at 20:00, answered 23:30: 1 h + 3.5 h = 4.5 h, not 6.5 h of round-the-clock time from 17:00."""
    events = drive([("2026-03-02 17:00", "open", {}), ("2026-03-02 20:00", "retriage", {"priority": "urgent"}),
                    ("2026-03-02 23:30", "respond", {})])
    table, case = project(events)
    assert case["first_response_business_seconds"] == 4.5 * 3600
    assert table[("first_response", 0)]["elapsed_business_seconds"] == 4.5 * 3600
    assert case["first_response_seconds"] == 6.5 * 3600  # calendar time is calendar time
    # The other way: urgent at Mon 20:00, re-triaged to normal (office hours) at 20:05, answered Tue
    # 08:00: 5 minutes round the clock, then nothing before Tue 09:00.
    events = drive([("2026-03-02 20:00", "open", {"priority": "urgent"}),
                    ("2026-03-02 20:05", "retriage", {"priority": "normal"}), ("2026-03-03 08:00", "respond", {})])
    assert project(events)[1]["first_response_business_seconds"] == 5 * 60


def test_a_reopened_clock_was_not_paused_while_it_was_met():
    """r04 (S12): met Mon 15:00 with 5 h used, reopened Wed 10:00; at Wed 11:00 it has used 6 h and
    never waited on the customer."""
    from domain.clocks import clock_views
    events = drive([("2026-03-02 09:00", "open", {}), ("2026-03-02 15:00", "propose_solution", {}),
                    ("2026-03-04 10:00", "reject_solution", {})])
    view = {v.name: v for v in clock_views(replay_on(None, events), at("2026-03-04 11:00"))}["resolution"]
    assert (view.state, view.elapsed, view.paused) == ("running", timedelta(hours=6), timedelta(0))
    assert project(events)[0][("resolution", 0)]["paused_seconds"] == 0


# -- item 10: which rule a return visit gets (r12) ------------------------------------------------------

@pytest.mark.parametrize("priority,rule,resolution,always_open", [
    ("normal", "seeds: periodic return visits; two weeks to make each", timedelta(hours=336), True),
    ("high", "Zendesk-style priority matrix, tightened for high priority", timedelta(hours=16), False),
    ("urgent", "seeds: urgent problems are acted on immediately", timedelta(hours=4), True),
    ("low", "low priority: three working days to reply", timedelta(hours=120), False),
])
def test_a_return_visit_gets_the_visit_window_at_normal_priority_and_its_priority_rule_otherwise(
        priority, rule, resolution, always_open):
    """docs/sla.md, resolution and "Choosing the rule": priority outweighs category."""
    terms = SHIPPED.terms_for(priority, "key_account", "return_visit", "on_site")
    assert (terms.rule, terms.targets["resolution"], terms.calendar.always_open) == (rule, resolution, always_open)
