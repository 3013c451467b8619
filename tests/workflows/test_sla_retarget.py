"""Retargeting on the real dev server: the SLA terms a command pins are read for the case it is
decided on (docs/sla.md, "Retargeting"), also when a re-triage and a policy re-application arrive
together (issue 10 review, item 1)."""

from __future__ import annotations

import asyncio
import uuid
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


async def test_a_retriage_chooses_from_the_pinned_policy_and_only_reapply_brings_in_an_edited_file(
        temporal_env, store, tmp_path):
    """t02: the policy file is edited after the case opens (version default-2027.01: catch-all
    4/4/24 h, high 1/1/8 h). An agent's re-triage keeps choosing from default-2026.11, the version
    pinned on the case: fault -> enquiry stays on the catch-all 8/8/48 h; normal -> high gets
    2/4/16 h. A supervisor's reapply_policy then pins the edited file: high is 1/1/8 h there."""
    from casework.client import CaseworkClient
    from casework.policy import DEFAULT_POLICY
    from worker import build_worker

    shipped = DEFAULT_POLICY.read_text()
    edited = (shipped.replace('version = "default-2026.11"', 'version = "default-2027.01"')
              .replace("first_response_hours = 8\nnext_response_hours = 8\nresolution_hours = 48",
                       "first_response_hours = 4\nnext_response_hours = 4\nresolution_hours = 24", 1)
              .replace('priority = "high"\nfirst_response_hours = 2\nnext_response_hours = 4\nresolution_hours = 16',
                       'priority = "high"\nfirst_response_hours = 1\nnext_response_hours = 1\nresolution_hours = 8', 1))
    assert edited.count("default-2027.01") == 1 and "resolution_hours = 24\n" in edited and "resolution_hours = 8\n" in edited
    policy = tmp_path / "policy.toml"
    policy.write_text(shipped)
    task_queue = f"sla-retarget-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, task_queue, policy_path=str(policy)):
        cases = CaseworkClient(temporal_env.client, task_queue)
        cid = (await cases.open_case(open_case())).case_id
        policy.write_text(edited)
        state = await cases.send(cid, command("retriage", category="enquiry", reason="it is a question"))
        assert (state.sla.policy_version, state.sla.targets) == ("default-2026.11", CATCH_ALL)
        state = await cases.send(cid, command("retriage", priority="high", reason="a whole floor is down"))
        assert (state.sla.policy_version, state.sla.targets) == ("default-2026.11", {
            "first_response": timedelta(hours=2), "next_response": timedelta(hours=4),
            "resolution": timedelta(hours=16)})
        state = await cases.send(cid, command("reapply_policy", SUPERVISOR, reason="policy updated"))
        assert (state.sla.policy_version, state.sla.targets) == ("default-2027.01", {
            "first_response": timedelta(hours=1), "next_response": timedelta(hours=1),
            "resolution": timedelta(hours=8)})
