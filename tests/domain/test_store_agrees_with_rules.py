"""Property: whatever commands arrive, the state the workflow holds equals the state the store rebuilds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.lifecycle import CommandRefused, decide, evolve, replay
from domain.store import CaseStore
from tests.domain.test_transitions import SAMPLE
from tests.factory import AGENT, CUSTOMER, SUPERVISOR, command, open_case

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
KINDS = sorted(SAMPLE)  # every lifecycle command a sender may send, closing included
steps = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from([AGENT, CUSTOMER, SUPERVISOR]),
                           st.booleans()), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_workflow_state_and_rebuilt_state_never_differ(steps):
    store = CaseStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    case_id = str(uuid.uuid4())
    opened = open_case(case_id=case_id)
    events = decide(None, opened, START)
    store.append(opened.command_id, events)
    state = replay(events)
    sent = [opened]
    for i, (kind, actor, resend) in enumerate(steps):
        now = START + timedelta(minutes=i + 1)
        cmd = sent[-1] if resend else command(kind, actor, **SAMPLE[kind])
        before = store.state(case_id)
        if resend:
            # A retried command: the store recognises its id and stores nothing, whatever it carries.
            assert store.append(cmd.command_id, events[:1]) == state.version
        else:
            try:
                new = decide(state, cmd, now)
            except CommandRefused:
                assert store.state(case_id) == before
                continue
            assert store.append(cmd.command_id, new) == state.version + len(new)
            for event in new:
                state = evolve(state, event)
            sent.append(cmd)
        assert store.state(case_id) == state
    assert replay(store.history(case_id)) == state

