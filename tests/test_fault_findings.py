"""Defects the fault harness (bench/fault.py) found, each reduced to a deterministic reproduction.

A store step that ran in a workflow task which was then lost (worker SIGKILLed, task timed out) has
stored its events, but its update was aborted and is not in the workflow's history. These tests
play that part by calling the store directly, exactly as the lost task's local activity did, and
then let the real engine carry on. Fixed in casework/client.py: a NOT_FOUND on a running case sends
the update again to the current run; on a closed case, the closed run's history says whether the
command is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casework.client import CommandRefused
from tests.factory import command, open_case


async def test_a_command_stored_by_a_lost_task_is_not_refused_once_another_command_closes_the_case(engine):
    """Seen in `python -m bench.fault` as refused_but_stored (code case_closed) in bursts and races:
    a note and a close ran their store steps in one workflow task that was lost; the close, sent
    again, is accepted and the case adopts both and completes; the note, sent again with its same
    id, finds the workflow completed, its update id is not in the history (it was aborted), and the
    client answers `case_closed` — but the note is stored."""
    cid = (await engine.cases.open_case(open_case())).case_id
    note = command("add_note", text="stored by a lost workflow task")
    close = command("close", reason="duplicate")
    version = engine.store.state(cid).version
    now = datetime.now(UTC)
    # What the lost task's local activities did before the worker died:
    engine.store.execute(cid, note, now, version)
    engine.store.execute(cid, close, now, version + 1)
    # The senders retry with the same ids. The close first: the case adopts both and completes.
    assert (await engine.cases.send(cid, close)).stage.value == "closed"
    stored = [e for e in engine.store.history(cid) if e.command_id == note.command_id]
    assert [e.type for e in stored] == ["NoteAdded"]
    try:
        await engine.cases.send(cid, note)
    except CommandRefused as err:
        pytest.fail(f"the note is stored, but its sender was told it was refused: {err.code}: {err}")


async def test_a_command_in_flight_during_a_reset_is_not_refused_as_closed(temporal_env, store):
    """Seen in `python -m bench.fault` as refused_but_stored (code case_closed) on a case that is open:
    a burst was in flight when `temporal workflow reset` terminated the run; the update on the
    terminated run answers NOT_FOUND, the update id is not in the new run's history, and the client
    concludes the case is closed — while the new run is running (and the command may be stored)."""
    import asyncio
    import uuid

    from casework.client import CaseworkClient
    from casework.config import temporal_binary
    from domain.ids import workflow_id_for
    from worker import build_worker

    task_queue = f"reset-{uuid.uuid4()}"
    cases = CaseworkClient(temporal_env.client, task_queue)
    async with build_worker(temporal_env.client, store, task_queue):
        cid = (await cases.open_case(open_case())).case_id
        await cases.send(cid, command("add_note", text="before"))
    # No worker now: the next command waits in flight on this run.
    note = command("add_note", text="in flight during the reset")
    sending = asyncio.create_task(cases.send(cid, note))
    await asyncio.sleep(1.0)
    proc = await asyncio.create_subprocess_exec(
        temporal_binary(), "workflow", "reset", "--address", temporal_env.client.service_client.config.target_host,
        "--workflow-id", workflow_id_for(cid), "--type", "FirstWorkflowTask", "--reason", "test",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    async with build_worker(temporal_env.client, store, task_queue):
        try:
            state = await asyncio.wait_for(sending, 60)
        except CommandRefused as err:
            await asyncio.sleep(2)  # the reset run adopts what the store holds
            desc = await temporal_env.client.get_workflow_handle(workflow_id_for(cid)).describe()
            pytest.fail(f"refused {err.code} ({err}) while the case's workflow is {desc.status.name} and its "
                        f"stream ends with {store.history(cid)[-1].type}")
        assert state.stage.value != "closed"
        assert [e.type for e in store.history(cid) if e.command_id == note.command_id] == ["NoteAdded"]
