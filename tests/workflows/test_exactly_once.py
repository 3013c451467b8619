"""Exactly once for real: the store and the workflow never disagree, whatever the interleaving.

Each test reproduces one of the observations of the exactly-once issue against the real dev server
and a real SQLite store: many commands in flight on one case, a worker SIGKILLed mid-command, a
`temporal workflow reset`, a workflow started by hand for another case, a command id reused, a
malformed start. The expectation is always counted from what was sent, never from the engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

from casework.client import CaseNotFound, CaseworkClient, CommandRefused
from casework.config import Settings, temporal_binary
from casework.stores import open_case_store
from domain.commands import timer_command_id
from domain.ids import workflow_id_for
from domain.lifecycle import replay
from tests.conftest import sqlite_store
from tests.factory import AGENT, command, open_case
from workflows.contract import WORKFLOW_TYPE, CaseInput, Limits

BIN = Path(sys.executable).parent


async def store_and_workflow_agree(engine_or_cases, store, case_id: str, timeout: float = 30.0) -> None:
    """Every event the store holds for the case, the workflow holds too (same state, same version)."""
    cases = getattr(engine_or_cases, "cases", engine_or_cases)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stored = replay(store.history(case_id))
        try:
            held = await cases.state(case_id)
        except CaseNotFound:  # a reset run re-opening the case: it holds nothing for a moment
            held = None
        if stored is not None and held is not None and held.model_dump() == stored.model_dump():
            return
        if asyncio.get_running_loop().time() > deadline:
            assert held is not None, "the workflow holds no case"
            assert held.version == stored.version, f"workflow at {held.version}, store at {stored.version}"
            assert held.model_dump() == stored.model_dump()
        await asyncio.sleep(0.2)


def no_command_stored_twice(store, case_id: str) -> None:
    """A command's events are stored once: no (command id, event type, clock) appears twice."""
    seen = Counter((e.command_id, e.type, getattr(e, "clock", None), getattr(e, "threshold", None))
                   for e in store.history(case_id))
    doubled = {k: n for k, n in seen.items() if n > 1}
    assert not doubled, f"stored more than once: {doubled}"


async def test_fifty_commands_in_flight_on_one_case_are_each_stored_once(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    notes = [command("add_note", text=f"note {i}") for i in range(50)]
    results = await asyncio.gather(*(engine.cases.send(cid, n) for n in notes), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []

    texts = sorted(e.text for e in engine.store.history(cid) if e.type == "NoteAdded")
    assert texts == sorted(f"note {i}" for i in range(50))
    await store_and_workflow_agree(engine, engine.store, cid)
    # The case still takes commands afterwards (it was wedged with store_diverged before).
    assert (await engine.cases.send(cid, command("respond", message="On it"))).stage.value == "response"
    await store_and_workflow_agree(engine, engine.store, cid)


async def test_a_client_keeps_its_updates_on_one_case_under_temporal_s_in_flight_limit(engine, monkeypatch):
    """Temporal admits 10 updates at once per workflow (history.maxInFlightUpdates); past it the server
    aborted updates and dropped their workflow tasks in a loop (the 150-case fault run stalled). Forty
    commands sent at once must reach the server at most IN_FLIGHT_PER_CASE at a time, and all land."""
    from temporalio.client import WorkflowHandle

    in_flight: Counter = Counter()
    most: Counter = Counter()
    sent = WorkflowHandle.execute_update

    async def counting(self, *args, **kwargs):
        in_flight[self.id] += 1
        most[self.id] = max(most[self.id], in_flight[self.id])
        try:
            return await sent(self, *args, **kwargs)
        finally:
            in_flight[self.id] -= 1

    monkeypatch.setattr(WorkflowHandle, "execute_update", counting)
    cid = (await engine.cases.open_case(open_case())).case_id
    other = (await engine.cases.open_case(open_case())).case_id
    sends = [engine.cases.send(c, command("add_note", text=f"{c} {i}")) for i in range(40) for c in (cid, other)]
    results = await asyncio.gather(*sends, return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert 1 < most[workflow_id_for(cid)] <= 8 and 1 < most[workflow_id_for(other)] <= 8, most
    for c in (cid, other):
        texts = Counter(e.text for e in engine.store.history(c) if e.type == "NoteAdded")
        assert texts == Counter(f"{c} {i}" for i in range(40))
        await store_and_workflow_agree(engine, engine.store, c)
        no_command_stored_twice(engine.store, c)


async def test_concurrent_lifecycle_commands_are_decided_in_some_order_and_the_refused_leave_nothing(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    # Twenty closes and twenty responses at once: exactly one close wins, every later command is refused.
    cmds = [command("close", reason="duplicate") for _ in range(20)]
    cmds += [command("respond", message=f"r{i}") for i in range(20)]
    results = await asyncio.gather(*(engine.cases.send(cid, c) for c in cmds), return_exceptions=True)
    accepted = [c for c, r in zip(cmds, results) if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert [r for r in refused if not isinstance(r, CommandRefused)] == []
    history = engine.store.history(cid)
    assert sum(e.type == "CaseClosed" for e in history) == 1
    stored_ids = {e.command_id for e in history}
    assert {c.command_id for c in accepted} <= stored_ids
    refused_ids = {c.command_id for c, r in zip(cmds, results) if isinstance(r, BaseException)}
    assert not refused_ids & stored_ids
    assert history[-1].type in ("CaseClosed", "SlaClockCancelled")  # nothing after the close
    no_command_stored_twice(engine.store, cid)


async def test_a_workflow_started_by_hand_cannot_write_into_another_case(engine):
    victim = (await engine.cases.open_case(open_case())).case_id
    before = [e.model_dump() for e in engine.store.history(victim)]
    forged = open_case(case_id=victim)
    handle = await engine.temporal.start_workflow(
        WORKFLOW_TYPE, CaseInput(open=forged), id=workflow_id_for(str(uuid.uuid4())),
        task_queue=engine.task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await asyncio.wait_for(handle.result(), 30)
    assert isinstance(err.value.cause, ApplicationError)
    assert "case_id_mismatch" in (err.value.cause.details or ()) or "does not match" in str(err.value.cause)
    assert [e.model_dump() for e in engine.store.history(victim)] == before


async def test_a_command_id_reused_for_another_command_is_refused(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    note = command("add_note", text="first")
    await engine.cases.send(cid, note)
    other = command("add_note", command_id=note.command_id, text="something else")
    with pytest.raises(CommandRefused) as err:
        await engine.cases.send(cid, other)
    assert err.value.code == "command_id_reused"
    kind_changed = command("respond", command_id=note.command_id, message="hello")
    with pytest.raises(CommandRefused) as err:
        await engine.cases.send(cid, kind_changed)
    assert err.value.code == "command_id_reused"
    # The same command again is a retry: applied once.
    await engine.cases.send(cid, note)
    assert [e.text for e in engine.store.history(cid) if e.type == "NoteAdded"] == ["first"]
    assert (await engine.cases.state(cid)).stage.value == "intake"


def test_the_store_refuses_a_reused_command_id_and_answers_a_retry_forever(store):
    """Beyond any window a workflow carries: the store itself keeps every command id and digest."""
    from datetime import UTC, datetime
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    opening = open_case(case_id="c-1")
    assert store.execute("c-1", opening, now, 0).version == 1
    first = command("add_note", text="one")
    assert [e.type for e in store.execute("c-1", first, now, 1).events] == ["NoteAdded"]
    for i in range(30):
        store.execute("c-1", command("add_note", text=f"more {i}"), now, 2 + i)
    again = store.execute("c-1", first, now, 32)  # retried much later: nothing new
    assert again.refusal is None and again.events == []
    reused = store.execute("c-1", command("add_note", command_id=first.command_id, text="two"), now, 32)
    assert reused.refusal is not None and reused.refusal.code == "command_id_reused"
    assert len(store.history("c-1")) == 32
    # A timer's id is derived from the state it fired at: fired twice, it stores once.
    tick = command("check_deadlines", actor=AGENT.model_copy(update={"id": "casework", "role": "system"}),
                   command_id=timer_command_id("check_deadlines", 32))
    first_tick = store.execute("c-1", tick, now, 32)
    again_tick = store.execute("c-1", tick, now, first_tick.version)
    assert again_tick.events == [] and len(store.history("c-1")) == first_tick.version
    assert timer_command_id("check_deadlines", 32) == timer_command_id("check_deadlines", 32) != \
        timer_command_id("check_deadlines", 33)


async def test_a_malformed_start_fails_the_workflow_at_once(engine):
    handle = await engine.temporal.start_workflow(
        WORKFLOW_TYPE, RawValue(engine.temporal.data_converter.payload_converter.to_payloads(
            [{"open": {"kind": "open", "subject": 42}}])[0]),
        id=workflow_id_for(str(uuid.uuid4())), task_queue=engine.task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await asyncio.wait_for(handle.result(), 30)
    assert "malformed" in str(err.value.cause)


@pytest.mark.parametrize("text", ["nul\x00byte", "bell\x07", "escape\x1b[31m"])
async def test_control_characters_are_refused_at_the_command_boundary(engine, text):
    cid = (await engine.cases.open_case(open_case())).case_id
    with pytest.raises((CommandRefused, ValueError)):
        await engine.cases.send(cid, command("add_note", text=text))
    # Also when a sender bypasses the Python models (any SDK sends JSON).
    handle = engine.temporal.get_workflow_handle(workflow_id_for(cid))
    payload = {"command_id": str(uuid.uuid4()), "actor": AGENT.model_dump(), "text": text}
    with pytest.raises(Exception) as err:
        await handle.execute_update("add_note", payload)
    assert "control character" in str(err.value.cause if hasattr(err.value, "cause") else err.value)
    assert [e.type for e in engine.store.history(cid) if e.type == "NoteAdded"] == []
    # Tabs and line breaks are text.
    await engine.cases.send(cid, command("add_note", text="line one\nline\ttwo"))


async def test_after_a_reset_the_case_adopts_what_the_store_holds(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    for i in range(5):
        await engine.cases.send(cid, command("add_note", text=f"before reset {i}"))
    await engine.cases.send(cid, command("respond", message="On it"))
    held = (await engine.cases.state(cid)).version
    wf = workflow_id_for(cid)
    proc = await asyncio.create_subprocess_exec(
        temporal_binary(), "workflow", "reset", "--address", engine.temporal.service_client.config.target_host,
        "--workflow-id", wf, "--type", "FirstWorkflowTask", "--reason", "test", "--yes",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    # The reset run replays only the opening; the store holds more, and the case must adopt it.
    await store_and_workflow_agree(engine, engine.store, cid)
    assert (await engine.cases.state(cid)).version == held
    await engine.cases.send(cid, command("propose_solution", summary="Rebooted"))
    await store_and_workflow_agree(engine, engine.store, cid)
    no_command_stored_twice(engine.store, cid)


async def test_a_worker_killed_with_many_commands_in_flight_loses_and_doubles_nothing(temporal_env, tmp_path):
    """A real worker process SIGKILLed while thirty commands are in flight on one case."""
    task_queue = f"kill-{uuid.uuid4()}"
    env = {**os.environ, "CASEWORK_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
           "CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_TASK_QUEUE": task_queue,
           "CASEWORK_PROJECTIONS": "false", "CASEWORK_HTTP_ENABLED": "false", "CASEWORK_LOG_FORMAT": "json"}

    log = tmp_path / "worker.log"  # kept for a failure's diagnosis (pytest's tmp_path)

    def start_worker() -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen([str(BIN / "casework"), "run"], env=env, stdout=out, stderr=out)

    cases = CaseworkClient(temporal_env.client, task_queue)
    worker = start_worker()
    try:
        cid = (await asyncio.wait_for(cases.open_case(open_case()), 60)).case_id
        for round_ in range(3):
            notes = [command("add_note", text=f"round {round_} note {i}") for i in range(30)]
            sends = [asyncio.create_task(cases.send(cid, n)) for n in notes]
            await asyncio.sleep(0.3 + 0.2 * round_)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker = start_worker()
            results = await asyncio.wait_for(asyncio.gather(*sends, return_exceptions=True), 300)
            assert [r for r in results if isinstance(r, BaseException)] == []
        store = open_case_store(Settings(data_dir=tmp_path))  # as the engine wrote it: encrypted at rest
        texts = Counter(e.text for e in store.history(cid) if e.type == "NoteAdded")
        assert texts == Counter(f"round {r} note {i}" for r in range(3) for i in range(30))
        await store_and_workflow_agree(cases, store, cid)
        no_command_stored_twice(store, cid)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()


def test_payload_json_of_a_timer_command_is_stable():
    # Two decisions of the same timer at the same version carry the same id and digest.
    sys_actor = {"id": "casework", "role": "system"}
    a = command("attempt_callback", actor=sys_actor, command_id=timer_command_id("attempt_callback", 7),
                last_survey_at="2026-01-01T00:00:00Z")
    b = command("attempt_callback", actor=sys_actor, command_id=timer_command_id("attempt_callback", 7))
    assert a.command_id == b.command_id and a.digest() == b.digest()
    assert json.loads(json.dumps(a.model_dump(mode="json")))["kind"] == "attempt_callback"


async def test_timer_command_ids_are_reserved_for_the_case_s_own_timers(engine):
    """A sender taking `timer:check_deadlines@<n>` could make the due timer look like a reused id."""
    cid = (await engine.cases.open_case(open_case())).case_id
    version = (await engine.cases.state(cid)).version
    handle = engine.temporal.get_workflow_handle(workflow_id_for(cid))
    payload = {"command_id": timer_command_id("check_deadlines", version + 1), "actor": AGENT.model_dump(),
               "text": "squatting"}
    with pytest.raises(Exception) as err:
        await handle.execute_update("add_note", payload)
    assert "reserved" in str(getattr(err.value, "cause", err.value))
    assert (await engine.cases.state(cid)).version == version


@pytest.mark.parametrize("workflow_id", ["bare-id-without-prefix", "case-" + "x" * 300, "case-ctrl\x1bid"])
async def test_a_workflow_whose_id_names_no_valid_case_fails_at_once(engine, workflow_id):
    handle = await engine.temporal.start_workflow(
        WORKFLOW_TYPE, CaseInput(open=open_case()), id=workflow_id, task_queue=engine.task_queue)
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 30)


async def test_a_start_without_input_fails_at_once(engine):
    handle = await engine.temporal.start_workflow(WORKFLOW_TYPE, id=workflow_id_for(str(uuid.uuid4())),
                                                  task_queue=engine.task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await asyncio.wait_for(handle.result(), 30)
    assert "malformed" in str(err.value.cause)


@pytest.mark.parametrize("limits", [Limits(max_commands_per_run=2)])
async def test_a_closed_case_answers_a_retry_from_any_run_and_refuses_a_reused_id(engine):
    """A closed case cannot take an update: the client reads the answer from the case's runs. A retry
    of a command stored in an earlier run is answered with the case, not `case_closed`; its id reused
    for another command is `command_id_reused`, not `case_closed`."""
    cid = (await engine.cases.open_case(open_case())).case_id
    first = command("add_note", text="stored in the first run")
    await engine.cases.send(cid, first)
    for n in range(4):  # two commands a run: the case continues as new twice
        await engine.cases.send(cid, command("add_note", text=f"note {n}"))
    await engine.cases.send(cid, command("close", reason="duplicate"))
    runs = [wf async for wf in engine.temporal.list_workflows(f'WorkflowId = "{workflow_id_for(cid)}"')]
    assert len(runs) >= 3, "the case was meant to continue as new"
    again = await engine.cases.send(cid, first)
    assert again.stage.value == "closed"
    with pytest.raises(CommandRefused) as err:
        await engine.cases.send(cid, command("add_note", command_id=first.command_id, text="not the same"))
    assert err.value.code == "command_id_reused"
    with pytest.raises(CommandRefused) as err:
        await engine.cases.send(cid, command("add_note", text="too late"))
    assert err.value.code == "case_closed"
    assert [e.text for e in engine.store.history(cid) if e.type == "NoteAdded"].count("stored in the first run") == 1


async def _raw(handle, cmd) -> str:
    """Sent as any SDK may: the update named after the command, its own update id."""
    try:
        await handle.execute_update(cmd.kind, cmd, id=str(uuid.uuid4()))
        return "ok"
    except Exception as err:  # noqa: BLE001 - the refusal's code is the answer
        cause = getattr(err, "cause", None)
        return (cause.details[0] if cause is not None and cause.details else type(err).__name__)


async def test_a_retriage_queued_behind_a_note_keeps_its_place_before_a_later_close(engine):
    """Hostile review D4: a batch took every queued command but the re-triage, so a close accepted after
    it was decided first and the re-triage met a closed case. Commands are decided in arrival order."""
    checked = 0
    for _ in range(8):
        cid = (await engine.cases.open_case(open_case())).case_id
        handle = engine.temporal.get_workflow_handle(workflow_id_for(cid))
        answers = await asyncio.gather(
            _raw(handle, command("add_note", text="first")),
            _raw(handle, command("retriage", priority="urgent", reason="a hospital")),
            _raw(handle, command("close", reason="duplicate")))
        history = await handle.fetch_history()
        accepted = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                    for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
        stored = [e.type for e in engine.store.history(cid) if e.type in ("CaseRetriaged", "CaseClosed", "NoteAdded")]
        if {"retriage", "close"} <= set(accepted) and accepted.index("retriage") < accepted.index("close"):
            assert answers[1] == "ok", (accepted, answers, stored)
            assert stored.index("CaseClosed") > stored.index("CaseRetriaged"), stored
            checked += 1
    assert checked, "the re-triage was never accepted before the close: nothing was checked"


async def test_large_commands_sent_together_are_each_applied_once(engine):
    """Hostile review D1: a batch's answer carries its commands' events; five 0.9 MB commands at once
    made it larger than Temporal's 2 MB payload limit and the case stuck. Commands are bounded now, and
    a batch holds at most 256 KiB of them."""
    cid = (await engine.cases.open_case(open_case())).case_id
    await engine.cases.send(cid, command("book_appointment", at=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
                                         place="Hall 2", need="replace the pump"))
    big = [command("record_service_report", work_done="w" * 19_000 + f" {i}",
                   parts_used=[f"part-{i}-{j}-" + "p" * 180 for j in range(200)]) for i in range(24)]
    results = await asyncio.gather(*(engine.cases.send(cid, c) for c in big), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    reports = [e for e in engine.store.history(cid) if e.type == "ServiceReportRecorded"]
    assert sorted(e.command_id for e in reports) == sorted(c.command_id for c in big)
    await store_and_workflow_agree(engine, engine.store, cid)
    # And the case still answers.
    assert (await engine.cases.send(cid, command("add_note", text="after"))).notes_count == 1


def test_a_command_cannot_outgrow_a_payload():
    with pytest.raises(Exception, match="at most 200"):
        command("record_service_report", work_done="w", parts_used=["p"] * 201)


def test_store_steps_are_never_cancelled_midway():
    """Hostile review D2: a cancellation raised inside a store step's thread could leave a pooled SQLite
    connection in a transaction, and every later step on it failed. The store activities opt out."""
    from temporalio.activity import _Definition

    from activities.case_store import CaseStoreActivities
    acts = CaseStoreActivities(store=None)  # type: ignore[arg-type]
    for fn in (acts.execute_command, acts.execute_batch, acts.read_case):
        assert _Definition.must_from_callable(fn).no_thread_cancel_exception, fn
