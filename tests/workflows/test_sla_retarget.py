"""Retargeting on the real dev server: the SLA terms a command pins are read for the case it is
decided on (docs/sla.md, "Retargeting"), also when a re-triage and a policy re-application arrive
together (issue 10 review, item 1)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.factory import SUPERVISOR, command, open_case

# The shipped policy (docs/sla.md, rule table): a normal B-tier fault gets the catch-all 8/8/48 h on
# office hours; an urgent one 0.25/0.5/4 h round the clock.
CATCH_ALL = {"first_response": timedelta(hours=8), "next_response": timedelta(hours=8),
             "resolution": timedelta(hours=48)}
URGENT = {"first_response": timedelta(minutes=15), "next_response": timedelta(minutes=30),
          "resolution": timedelta(hours=4)}


async def test_a_retriage_and_a_reapply_sent_together_pin_the_terms_of_the_new_priority(engine):
    cases = [(await engine.cases.open_case(open_case())).case_id for _ in range(6)]
    # Every case gets both commands at once, and all cases at once: each command waits its turn.
    await asyncio.gather(*(engine.cases.send(cid, cmd) for cid in cases for cmd in (
        command("retriage", priority="urgent", reason="it is down"),
        command("reapply_policy", SUPERVISOR, reason="policy updated"))))
    for cid in cases:
        history = engine.store.history(cid)
        kinds = [e.type for e in history if e.type in ("CaseRetriaged", "SlaPolicyPinned")]
        pins = [e for e in history if e.type == "SlaPolicyPinned"]
        assert len(pins) == 3 and "CaseRetriaged" in kinds, kinds
        retriaged = kinds.index("CaseRetriaged")
        # Pinned before the re-triage: the catch-all; from the re-triage on: the urgent terms.
        for position, pin in zip([i for i, k in enumerate(kinds) if k == "SlaPolicyPinned"], pins):
            want, always_open = (URGENT, True) if position > retriaged else (CATCH_ALL, False)
            assert (pin.terms.targets, pin.terms.calendar.always_open) == (want, always_open), (cid, kinds)
        state = await engine.cases.state(cid)
        assert state.priority.value == "urgent"
        assert (state.sla.targets, state.sla.calendar.always_open) == (URGENT, True)
        assert state.clocks["first_response"].target == timedelta(minutes=15)
