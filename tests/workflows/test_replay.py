"""The case workflow runs without Temporal's sandbox (workflows/service_case.py says why): its histories
must replay. A history with a burst of commands (batched store steps), a re-triage decided alone, the
timer kept across notes and a close is replayed by Temporal's Replayer; a nondeterministic workflow
fails it."""

from __future__ import annotations

import asyncio

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.ids import workflow_id_for
from tests.factory import CUSTOMER, SUPERVISOR, command, open_case
from workflows.service_case import ServiceCaseWorkflow


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
    replayer = Replayer(workflows=[ServiceCaseWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
