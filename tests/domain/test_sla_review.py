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
