"""What the Temporal UI shows of a case: its subject and customer as the workflow's summary and current
details, and search attributes to find it by assignee, team, category and next due instant."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from domain.ids import workflow_id_for
from tests.factory import SUPERVISOR, command, open_case


async def _listed(engine, query: str) -> list[str]:
    return [wf.id async for wf in engine.temporal.list_workflows(query)]


async def _eventually(engine, query: str, wid: str, timeout: float = 30.0) -> None:
    # Visibility is eventually consistent: the dev server indexes an upsert a moment after it.
    for _ in range(int(timeout / 0.25)):
        if wid in await _listed(engine, query):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{wid} not listed by {query!r}")


async def test_a_case_is_listed_by_subject_customer_and_routing(engine):
    opened = await engine.cases.open_case(open_case(subject="Scanner jams on every page", category="fault"))
    cid, wid = opened.case_id, workflow_id_for(opened.case_id)
    handle = engine.temporal.get_workflow_handle(wid)
    described = await handle.describe()
    assert await described.static_summary() == "Scanner jams on every page — Wang Fang"

    await engine.cases.send(cid, command("reassign", actor=SUPERVISOR, assignee="agent-bob", team="printers",
                                         reason="printer specialist"))
    await _eventually(engine, f"CaseTeam = 'printers' AND CaseAssignee = 'agent-bob' AND CaseCategory = 'fault' "
                      f"AND WorkflowId = '{wid}'", wid)

    # The next due instant is the earliest breach due of a running clock, as the clocks query says.
    clocks = await engine.cases.clocks(cid)
    running = sorted(c.due for c in clocks if c.state == "running" and c.due is not None)
    assert running, clocks
    due = running[0]
    before, after = (due - timedelta(seconds=1)).isoformat(), (due + timedelta(seconds=1)).isoformat()
    await _eventually(engine, f"CaseNextDue > '{before}' AND CaseNextDue < '{after}' AND WorkflowId = '{wid}'", wid)

    # The UI's current details of the run come from the case itself.
    metadata = await handle.query("__temporal_workflow_metadata")
    assert "Scanner jams on every page" in str(metadata) and "Wang Fang" in str(metadata)
