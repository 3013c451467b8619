"""Real service-desk traces (BPI Challenge 2013, closed problems) driven through the running engine:
the commands the importer plans for them (casework/mappings/bpic2013.toml), sent live."""

from __future__ import annotations

import asyncio

from casework.importer.logs import read_traces
from casework.importer.mapping import load_mapping
from casework.importer.plan import Planner
from casework.policy import load_policy
from domain.model import ClosureReason, Stage
from tests.importer import oracle

CASES = 240


def chosen_traces():
    """The loops first: every trace with a reopen, then traces with waits, then the rest in file order.
    Traces whose later work is a follow-up case (after the reopen window: oracle.cases) are left out:
    sent live, at the engine's time, every return to work comes within the window."""
    mapping = load_mapping("bpic2013")
    traces = {t.case: t for t in read_traces(oracle.DATA, mapping)}
    rows = {k: r for k, r in oracle.traces().items() if len(oracle.cases(r)) == 1}
    traces = {k: t for k, t in traces.items() if k in rows}
    reopened = [k for k in traces if oracle.reopens(rows[k])]
    waited = [k for k in traces if k not in set(reopened) and oracle.clarification_rounds(rows[k])]
    plain = [k for k in traces if k not in set(reopened) | set(waited)]
    keys = (reopened + waited[:CASES // 3] + plain)[:CASES]
    planner = Planner(mapping, load_policy())
    return [(rows[k], planner.plan(traces[k])) for k in keys]


async def test_real_traces_end_in_the_state_their_trace_says_with_nothing_refused(engine):
    """The traces' planned commands sent live, as a backend sends them now: at the engine's time.
    (Sent live with their recorded 2006-2012 instants they would be refused once a clock's timer had
    recorded a later breach: a live case's history is kept in order; old history is the importer's,
    checked in tests/importer/test_bpic_import.py.)"""
    chosen = chosen_traces()
    assert len(chosen) == CASES
    want = [oracle.case_figures(rows) for rows, _ in chosen]
    assert sum(f["reopen_count"] for f in want) > 30
    assert sum(f["clarification_rounds"] for f in want) > 50
    sem = asyncio.Semaphore(8)

    async def drive(plan):
        live = [cmd.model_copy(update={"occurred_at": None}) for cmd in plan.sent]
        async with sem:
            state = await engine.cases.open_case(live[0])
            for cmd in live[1:]:  # any refusal raises CommandRefused and fails the test
                state = await engine.cases.send(state.case_id, cmd)
            return state

    states = await asyncio.gather(*(drive(plan) for _, plan in chosen))
    for (rows, plan), state, figures in zip(chosen, states, want):
        assert not plan.refused
        assert (state.stage, state.closure_reason) == (Stage.closed, ClosureReason.resolved), rows[0]["Case ID"]
        assert state.priority.value == figures["priority"]
        assert (state.reopen_count, state.clarification_rounds) == (
            figures["reopen_count"], figures["clarification_rounds"])
        stored = engine.store.history(state.case_id)
        assert len(stored) == state.version and stored[-1].type == "CaseClosed"
    assert sum(len(plan.sent) for _, plan in chosen) > 1000
