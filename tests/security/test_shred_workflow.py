"""A running case told that its customer was forgotten reads itself back from the store, where their
fields no longer open, and continues as new. Told so while the key lives, it changes nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.commands import AddNote, OpenCase, Respond
from domain.ids import workflow_id_for
from domain.model import Actor
from domain.personal import FORGOTTEN
from casework.stores import open_case_store
from tests.security.shred_helpers import settings_for
from worker import build_worker
from workflows.contract import FORGET_UPDATE, ForgetPersonalData

AGENT = Actor(id="agent-ann", role="agent")
SUPERVISOR = Actor(id="sup-sam", role="supervisor")


async def new_run(handle, old: str) -> str:
    for _ in range(100):
        run_id = (await handle.describe()).run_id
        if run_id != old:
            return run_id
        await asyncio.sleep(0.1)
    raise AssertionError("the case did not continue as new")


@pytest.fixture
async def engine(temporal_env, tmp_path):
    """A worker on a store whose personal fields are sealed with per-customer keys (as `casework run`)."""
    from tests.conftest import Engine
    from casework.client import CaseworkClient

    store = open_case_store(settings_for("sqlite", tmp_path / "data"))
    task_queue = f"shred-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, task_queue):
        yield Engine(CaseworkClient(temporal_env.client, task_queue), store, temporal_env.client, task_queue)


async def test_the_case_drops_the_customers_fields_and_continues_as_new(engine):
    cid = f"wf-{uuid.uuid4()}"
    await engine.cases.open_case(OpenCase(
        command_id=str(uuid.uuid4()), actor=AGENT, case_id=cid,
        customer={"id": "cust-f", "name": "Fenella Grimsdottir", "contact": "fenella@example.org"},
        channel="chat", category="enquiry", subject="Fenella's invoice", description="wrong address on it"))
    await engine.cases.send(cid, Respond(command_id=str(uuid.uuid4()), actor=AGENT, message="checking"))
    handle = engine.temporal.get_workflow_handle(workflow_id_for(cid))
    first = (await handle.describe()).run_id

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(FORGET_UPDATE, ForgetPersonalData(customer_id="cust-f", actor=AGENT), result_type=str)
    assert "supervisors" in str(refused.value.cause)
    # Another customer's forgetting leaves the case as it is.
    assert await handle.execute_update(FORGET_UPDATE, ForgetPersonalData(customer_id="cust-other", actor=SUPERVISOR),
                                       result_type=str) == first
    await asyncio.sleep(0.5)
    assert (await handle.describe()).run_id == first

    # Told so while the customer's key lives: the store reads the same case, nothing changes.
    assert await handle.execute_update(FORGET_UPDATE, ForgetPersonalData(customer_id="cust-f", actor=SUPERVISOR),
                                       result_type=str) == first
    await asyncio.sleep(0.5)
    assert (await handle.describe()).run_id == first
    assert (await engine.cases.state(cid)).customer.name == "Fenella Grimsdottir"

    engine.store.sealer.forget("cust-f", SUPERVISOR.id)  # the key is destroyed (as forget-customer does)
    assert await handle.execute_update(FORGET_UPDATE, ForgetPersonalData(customer_id="cust-f", actor=SUPERVISOR),
                                       result_type=str) == first
    second = await new_run(handle, first)
    state = await engine.cases.state(cid)
    assert (state.customer.name, state.customer.contact, state.subject, state.description) == (FORGOTTEN,) * 4
    assert (state.customer.id, state.stage.value) == ("cust-f", "response")
    history = await engine.temporal.get_workflow_handle(workflow_id_for(cid), run_id=second).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert b"Fenella" not in raw and b"wrong address" not in raw and b"cust-f" in raw
    timeline = await engine.cases.timeline(cid)
    assert [t.type for t in timeline if t.type in ("CaseOpened", "ResponseSent")] == ["CaseOpened", "ResponseSent"]
    # The case goes on in its new run.
    after = await engine.cases.send(cid, AddNote(command_id=str(uuid.uuid4()), actor=AGENT, text="later"))
    assert after.notes_count == 1 and after.customer.name == FORGOTTEN
