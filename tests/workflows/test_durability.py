"""The worker's restart and a long case's continue-as-new lose nothing and double nothing."""

from __future__ import annotations

import asyncio

import pytest

from casework.client import CaseworkClient
from domain.ids import workflow_id_for
from domain.model import ClosureReason, Stage
from tests.conftest import sqlite_store
from tests.factory import CUSTOMER, command, open_case
from tests.workflows.helpers import stored_types
from worker import build_worker
from workflows.contract import Limits


async def test_case_half_way_survives_a_worker_restart(temporal_env, tmp_path):
    task_queue = "restart-" + tmp_path.name
    cases = CaseworkClient(temporal_env.client, task_queue)
    async with build_worker(temporal_env.client, sqlite_store(tmp_path / "events.db"), task_queue):
        cid = (await cases.open_case(open_case())).case_id
        await cases.send(cid, command("respond", message="On it"))
        await cases.send(cid, command("request_clarification", question="Which floor?"))

    # No worker now: the customer's reply waits in Temporal until a worker is back.
    reply = asyncio.create_task(cases.send(cid, command("record_customer_reply", CUSTOMER, message="3rd")))
    await asyncio.sleep(1)
    assert not reply.done()

    store = sqlite_store(tmp_path / "events.db")  # a new process would open the same file afresh
    async with build_worker(temporal_env.client, store, task_queue):
        assert (await asyncio.wait_for(reply, 30)).stage is Stage.response
        await cases.send(cid, command("propose_solution", summary="Replaced the switch"))
        await cases.send(cid, command("start_follow_up"))
        final = await cases.send(cid, command("confirm_solution", CUSTOMER))

    assert final.closure_reason is ClosureReason.resolved
    ids = [e.command_id for e in store.history(cid) if e.type in stored_types(store, cid)]
    assert stored_types(store, cid) == [
        "CaseOpened", "ResponseSent", "ClarificationRequested", "CustomerReplied", "SolutionProposed",
        "FollowUpStarted", "SolutionConfirmed", "CaseClosed"]
    assert len(set(ids)) == len(ids) - 1  # only confirm's two lifecycle events share a command id


@pytest.mark.parametrize("limits", [Limits(max_commands_per_run=400)])
async def test_a_long_case_continues_as_new_with_state_clock_and_pending_commands_intact(engine):
    cid = (await engine.cases.open_case(open_case(category="complaint"))).case_id
    await engine.cases.send(cid, command("propose_solution", summary="Refund offered"))
    # A follow-up clock that must survive every continue-as-new.
    follow_up = await engine.cases.send(cid, command("start_follow_up", follow_up_hours=2))
    notes = [command("add_note", text=f"customer thread message {i}") for i in range(2100)]

    # Sent ten at a time, so commands are in flight whenever the run hands over to the next.
    sem = asyncio.Semaphore(10)

    async def send(cmd):
        async with sem:
            return await engine.cases.send(cid, cmd)

    await asyncio.gather(*(send(n) for n in notes))
    state = await engine.cases.state(cid)

    assert state.notes_count == 2100
    assert state.stage is Stage.follow_up and state.follow_up_due == follow_up.follow_up_due
    assert await _runs_so_far(engine, cid) >= 3  # 2,100 commands at 400 a run
    # Notes retried after the hand-overs are still recognised as applied: the last one from the
    # workflow's memory, the first from the event store (it is older than the remembered window).
    # (A retry may answer with the state as it was when the command first applied.)
    await engine.cases.send(cid, notes[-1])
    await engine.cases.send(cid, notes[0])
    assert (await engine.cases.state(cid)).notes_count == 2100
    types = stored_types(engine.store, cid)
    assert types.count("NoteAdded") == 2100 and len(types) == 2103
    assert len(engine.store.history(cid)) == (await engine.cases.state(cid)).version
    final = await engine.cases.send(cid, command("confirm_solution", CUSTOMER))
    assert final.stage is Stage.closed and final.notes_count == 2100


async def _runs_so_far(engine, cid) -> int:
    """Follow the chain of runs backwards from the current one, through each continue-as-new."""
    runs, handle = 0, engine.temporal.get_workflow_handle(workflow_id_for(cid))
    while handle is not None:
        started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
        runs += 1
        previous = started.continued_execution_run_id
        handle = engine.temporal.get_workflow_handle(handle.id, run_id=previous) if previous else None
    return runs
