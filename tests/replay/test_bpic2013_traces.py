"""Real service-desk traces (BPI Challenge 2013, closed problems) driven through the engine."""

from __future__ import annotations

import asyncio
from pathlib import Path

from casework.bpic2013 import read_traces, replay_for
from domain.model import ClosureReason, Stage

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bpic2013-closed-problems.csv"
CASES = 240


def chosen_traces():
    """The loops first: every trace with a reopen, then traces with waits, then the rest in file order."""
    traces = read_traces(DATA)
    reopened = [k for k, rows in traces.items() if any(r["Activity"].startswith("Completed") for r in rows[:-1])]
    waited = [k for k, rows in traces.items() if k not in set(reopened)
              and any(r["Activity"] == "Accepted-Wait" for r in rows)]
    plain = [k for k in traces if k not in set(reopened) | set(waited)]
    keys = (reopened + waited[:CASES // 3] + plain)[:CASES]
    return {k: traces[k] for k in keys}


def test_the_mapping_covers_every_trace_in_the_log():
    traces = read_traces(DATA)
    assert len(traces) == 1487
    for key, rows in traces.items():
        replay = replay_for(key, rows)
        assert replay.commands[-1].kind == "confirm_solution", key


async def test_real_traces_end_in_the_state_their_trace_says_with_nothing_refused(engine):
    replays = [replay_for(k, rows) for k, rows in chosen_traces().items()]
    assert len(replays) == CASES
    assert sum(r.expected.reopen_count for r in replays) > 20
    assert sum(r.expected.clarification_rounds for r in replays) > 50
    sem = asyncio.Semaphore(8)

    async def drive(replay):
        async with sem:
            state = await engine.cases.open_case(replay.open)
            for cmd in replay.commands:  # any refusal raises CommandRefused and fails the test
                state = await engine.cases.send(state.case_id, cmd)
            return replay, state

    results = await asyncio.gather(*(drive(r) for r in replays))

    commands = 0
    for replay, state in results:
        want = replay.expected
        commands += len(replay.commands) + 1
        assert (state.stage, state.closure_reason) == (Stage.closed, ClosureReason.resolved), replay.external_id
        assert state.priority.value == want.priority
        assert (state.opened_at, state.closed_at) == (want.opened_at, want.closed_at)
        assert state.first_response_at == want.first_response_at
        assert (state.reopen_count, state.clarification_rounds) == (want.reopen_count, want.clarification_rounds)
        stored = engine.store.history(state.case_id)
        assert len(stored) == state.version and stored[-1].type == "CaseClosed"
    assert commands > 1000

