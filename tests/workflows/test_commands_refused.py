"""Refused and repeated commands: a refusal says why and leaves no trace; a retry is applied once."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowUpdateFailedError

from casework.client import CommandRefused
from domain.ids import workflow_id_for
from domain.model import Stage
from tests.factory import CUSTOMER, command, open_case
from tests.workflows.helpers import history_length, stored_types


async def refused(engine, case_id, cmd) -> CommandRefused:
    """Send a command that must be refused; prove it changed neither Temporal history nor the store."""
    before_history = await history_length(engine.temporal, case_id)
    before_store = stored_types(engine.store, case_id)
    with pytest.raises(CommandRefused) as caught:
        await engine.cases.send(case_id, cmd)
    assert await history_length(engine.temporal, case_id) == before_history
    assert stored_types(engine.store, case_id) == before_store
    return caught.value


async def test_command_not_allowed_in_stage_names_stage_and_command_and_leaves_no_trace(engine):
    cid = (await engine.cases.open_case(open_case())).case_id

    err = await refused(engine, cid, command("start_follow_up"))

    assert err.code == "not_allowed_in_stage"
    assert "'start_follow_up'" in err.message and "'intake'" in err.message
    assert (await engine.cases.state(cid)).stage is Stage.intake


async def test_customer_may_not_propose_a_solution(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    err = await refused(engine, cid, command("propose_solution", CUSTOMER, summary="I fixed it myself"))
    assert err.code == "role_not_allowed" and "'customer'" in err.message


async def test_resolved_closure_without_confirmation_is_refused(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    await engine.cases.send(cid, command("propose_solution", summary="Reboot"))
    err = await refused(engine, cid, command("close", reason="resolved"))
    assert err.code == "not_confirmed" and "confirm_solution" in err.message


async def test_malformed_payload_is_refused_with_the_field_named(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    handle = engine.temporal.get_workflow_handle(workflow_id_for(cid))
    before = await history_length(engine.temporal, cid)

    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update("respond", {"command_id": "c-1", "actor": {"id": "a", "role": "agent"}})

    assert "malformed" in caught.value.cause.message and "message" in caught.value.cause.message
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update("teleport", {"command_id": "c-2"})
    assert "unknown command 'teleport'" in caught.value.cause.message
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("expire_follow_up", {"command_id": "c-3",
                                                         "actor": {"id": "x", "role": "system"}})
    assert await history_length(engine.temporal, cid) == before
    assert stored_types(engine.store, cid) == ["CaseOpened"]


async def test_command_for_a_closed_case_is_refused_naming_the_stage(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    await engine.cases.send(cid, command("close", reason="invalid", note="spam"))
    await engine.cases.wait_closed(cid)

    with pytest.raises(CommandRefused) as caught:
        await engine.cases.send(cid, command("add_note", text="late note"))

    assert caught.value.code == "case_closed"
    assert "'add_note'" in caught.value.message and "'closed'" in caught.value.message
    assert stored_types(engine.store, cid) == ["CaseOpened", "CaseClosed"]


async def test_command_for_an_unknown_case_is_refused(engine):
    with pytest.raises(CommandRefused) as caught:
        await engine.cases.send(str(uuid.uuid4()), command("add_note", text="hello?"))
    assert caught.value.code == "unknown_case"


async def test_retried_command_id_is_applied_once(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    note = command("add_note", text="called back")

    first = await engine.cases.send(cid, note)
    again = await engine.cases.send(cid, note)
    await engine.cases.send(cid, command("respond", message="hello"))
    # Retried late, after the case moved on: still a no-op, not a refusal.
    late = await engine.cases.send(cid, note)

    assert first.notes_count == again.notes_count == late.notes_count == 1
    assert stored_types(engine.store, cid) == ["CaseOpened", "NoteAdded", "ResponseSent"]


async def test_opening_the_same_source_reference_twice_returns_the_same_case(engine):
    first_cmd = open_case()
    first = await engine.cases.open_case(first_cmd)
    # Another backend call for the same ticket, with its own command id and a different subject.
    second = await engine.cases.open_case(open_case(source=first_cmd.source, subject="Printer again"))

    assert second.case_id == first.case_id and second.subject == first.subject
    assert stored_types(engine.store, first.case_id) == ["CaseOpened"]
    runs = [w async for w in engine.temporal.list_workflows(f"WorkflowId = '{workflow_id_for(first.case_id)}'")]
    assert len({r.run_id for r in runs}) <= 1  # visibility may lag, but never shows a second run

    await engine.cases.send(first.case_id, command("close", reason="cancelled"))
    await engine.cases.wait_closed(first.case_id)
    reopened = await engine.cases.open_case(open_case(source=first_cmd.source))
    assert reopened.stage is Stage.closed
    assert stored_types(engine.store, first.case_id) == ["CaseOpened", "CaseClosed"]
