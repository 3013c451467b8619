"""The case workflow runs without Temporal's sandbox (workflows/service_case.py says why): its histories
must replay. A history with a burst of commands (batched store steps), a re-triage decided alone, the
timer kept across notes and a close is replayed by Temporal's Replayer; a nondeterministic workflow
fails it. So must the histories recorded by earlier workflow code (tests/workflows/histories, named by
the commit that recorded them): a case started by a deployed worker may still be running when a new
worker takes it, and every change to the workflow's commands goes behind `workflow.patched`."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from casework.client import CaseworkClient
from domain.ids import workflow_id_for
from tests.conftest import sqlite_store
from tests.factory import CUSTOMER, SUPERVISOR, command, open_case
from worker import build_worker
from workflows.service_case import ServiceCaseWorkflow

RECORDED = sorted(Path(__file__).with_name("histories").glob("*.json.gz"))


def replayer() -> Replayer:
    return Replayer(workflows=[ServiceCaseWorkflow], data_converter=pydantic_data_converter)


async def test_a_case_s_history_replays(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    await asyncio.gather(*(engine.cases.send(cid, command("add_note", text=f"note {i}")) for i in range(12)),
                         engine.cases.send(cid, command("retriage", actor=SUPERVISOR, priority="high", reason="vip")))
    for kind, actor, fields in (("respond", None, {"message": "On it"}),
                                ("propose_solution", None, {"summary": "Replaced the toner"}),
                                ("start_follow_up", None, {}),
                                ("confirm_solution", CUSTOMER, {})):
        cmd = command(kind, **fields) if actor is None else command(kind, actor=actor, **fields)
        await engine.cases.send(cid, cmd)
    state = await engine.cases.wait_closed(cid)
    assert state.stage.value == "closed"
    history = await engine.temporal.get_workflow_handle(workflow_id_for(cid)).fetch_history()
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def test_the_recorded_histories_are_there():
    # lifecycle, burst, open (a case still running), timers (SLA warnings, a breach, callbacks)
    assert len(RECORDED) >= 4, RECORDED


@pytest.mark.parametrize("path", RECORDED, ids=[p.name.removesuffix(".json.gz") for p in RECORDED])
async def test_a_history_recorded_by_earlier_workflow_code_replays(path):
    recorded = json.loads(gzip.decompress(path.read_bytes()))
    # The workflow reads its case id from its workflow id: replay it under the one it ran as.
    workflow_id = recorded["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    history = WorkflowHistory.from_json(workflow_id, recorded)
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def _opened_and_replied(temporal_env, store, lean: bool) -> WorkflowHistory:
    queue = f"casework-test-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, queue, lean_history=lean):
        cases = CaseworkClient(temporal_env.client, queue)
        cid = (await cases.open_case(open_case())).case_id
        await cases.send(cid, command("respond", message="on it"))
        await cases.send(cid, command("close", reason="cancelled"))
        await cases.wait_closed(cid)
    return await temporal_env.client.get_workflow_handle(workflow_id_for(cid)).fetch_history()


def _shape(history: WorkflowHistory) -> tuple[list[str], int, int]:
    """(markers by name, activities scheduled, timers cancelled)."""
    markers = [e.marker_recorded_event_attributes.marker_name for e in history.events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    count = lambda t: sum(e.event_type == t for e in history.events)  # noqa: E731
    return (sorted(set(markers)), count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
            count(EventType.EVENT_TYPE_TIMER_CANCELED))


async def test_lean_history_is_the_patch_and_off_keeps_the_commands_of_before(temporal_env, tmp_path):
    # CASEWORK_LEAN_HISTORY=false (a rolling upgrade): new cases write what the workflow before the
    # patch wrote, which older workers can replay: the terms by an activity, the timer cancelled when
    # the response moved the deadline and again at the close. On: the patch's marker, the terms by a
    # local activity, the timer left running by both.
    before = await _opened_and_replied(temporal_env, sqlite_store(tmp_path / "a.db"), lean=False)
    lean = await _opened_and_replied(temporal_env, sqlite_store(tmp_path / "b.db"), lean=True)
    assert _shape(before) == (["core_local_activity"], 1, 2)
    assert _shape(lean) == (["core_local_activity", "core_patch"], 0, 0)
    assert len(lean.events) < len(before.events)
    for history in (before, lean):
        result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure
