"""An open imported case continues as a live workflow from its imported state, with its clocks
running: the breach that fell due after the log ends is recorded by the case's own timer, at its due
instant, and live commands are taken (real Temporal dev server, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowInput, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from casework.importer import import_log, load_mapping, start_live
from casework.policy import load_policy
from domain.commands import Respond
from domain.ids import case_id_for, workflow_id_for
from domain.model import Actor, Role, SourceRef
from tests.cli.helpers import cli_engine
from tests.importer.test_import import MAPPING, write


async def test_an_open_imported_case_continues_live_with_its_clocks_running(engine, tmp_path):
    (tmp_path / "m.toml").write_text(MAPPING)
    mapping = load_mapping(tmp_path / "m.toml")
    opened = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    log = write(tmp_path / "log.csv", [
        # urgent: the first response is due 15 minutes after opening, round the clock (default policy)
        ["LIVE-1", "New", opened.isoformat(), "ann", "urgent"],
        ["LIVE-1", "New", (opened + timedelta(minutes=5)).isoformat(), "ann", "urgent"],
        ["DONE-1", "New", opened.isoformat(), "ann", "low"],
        ["DONE-1", "INVALID", (opened + timedelta(minutes=1)).isoformat(), "ann", "low"]])
    summary = import_log(log, mapping, engine.store, load_policy())
    case_id = case_id_for(SourceRef(system="helpdesk", external_id="LIVE-1"))
    assert summary.open_case_ids == [case_id] and summary.closed == 1
    imported = engine.store.state(case_id)
    assert imported.sla_breached == []  # the import decided nothing past the log's last row

    first = await start_live(engine.temporal, engine.store, summary.open_case_ids, engine.task_queue)
    assert (first.started, first.already) == (1, 0)
    handle = engine.temporal.get_workflow_handle(workflow_id_for(case_id))
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING

    # The case's timer records the breach that fell due while it was history, at its due instant.
    for _ in range(200):
        breaches = [e for e in engine.store.history(case_id) if e.type == "SlaClockBreached"]
        if any(e.clock == "first_response" for e in breaches):
            break
        await asyncio.sleep(0.1)
    breach = next(e for e in breaches if e.clock == "first_response")
    assert breach.at == opened + timedelta(minutes=15) == imported.clocks["first_response"].due
    state = await engine.cases.state(case_id)
    assert state.version >= imported.version + 1 and "first_response" in state.sla_breached

    # Live commands are taken on the imported case, and a repeated start changes nothing.
    answered = await engine.cases.send(case_id, Respond(command_id="live-1", actor=Actor(id="ann", role=Role.agent),
                                                        message="on it"))
    assert answered.stage.value == "response" and answered.first_response_at is not None
    again = await start_live(engine.temporal, engine.store, summary.open_case_ids, engine.task_queue)
    assert (again.started, again.already) == (0, 1)
    assert (await engine.cases.state(case_id)).version == answered.version
    assert engine.store.history(case_id)[imported.version - 1].command_id.startswith("import:helpdesk:LIVE-1")



async def test_a_re_import_leaves_a_case_that_continues_live_to_the_engine(temporal_env, tmp_path):
    """The real command line twice against a running engine: the trial export's open case continues
    live; the final export's later row for it is refused (case_live), not written under its workflow,
    while a closed case's and a new case's rows are imported. The engine is asked: the live case's
    stream holds nothing the engine decided yet."""
    (tmp_path / "m.toml").write_text(MAPPING)
    now = datetime.now(UTC).replace(microsecond=0)
    trial = [["LIVE-2", "New", (now - timedelta(hours=2)).isoformat(), "ann", "low"],
             ["LIVE-2", "Take in charge", (now - timedelta(hours=1)).isoformat(), "ann", "low"],
             ["DONE-2", "New", (now - timedelta(hours=2)).isoformat(), "ann", "low"],
             ["DONE-2", "INVALID", (now - timedelta(hours=1)).isoformat(), "ann", "low"]]
    later = [["LIVE-2", "Closed", (now - timedelta(minutes=10)).isoformat(), "bob", "low"],
             ["NEW-2", "New", (now - timedelta(minutes=5)).isoformat(), "cid", "low"]]
    write(tmp_path / "trial.csv", trial)
    write(tmp_path / "final.csv", trial + later)
    async with cli_engine(temporal_env, tmp_path / "data") as e:
        first = await e.cli("import", str(tmp_path / "trial.csv"), "--mapping", str(tmp_path / "m.toml"),
                            "--no-progress", "--json", timeout=180)
        assert first.code == 0, first.err
        assert json.loads(first.out)["live_started"] == 1
        live_id = case_id_for(SourceRef(system="helpdesk", external_id="LIVE-2"))
        imported = e.store.history(live_id)
        assert all(x.command_id.startswith("import:") for x in imported)  # nothing of the engine's in it
        again = await e.cli("import", str(tmp_path / "final.csv"), "--mapping", str(tmp_path / "m.toml"),
                            "--no-progress", "--json", timeout=180)
        assert again.code == 0, again.err
        summary = json.loads(again.out)
        refused = [(r["case"], r["activity"], r["code"]) for r in summary["refused"]]
        assert refused == [("LIVE-2", "Closed", "case_live")]
        assert (summary["imported"], summary["already"], summary["continued"]) == (1, 2, 0)
        assert e.store.history(live_id) == imported  # nothing written under the running workflow
        state = await e.cases.state(live_id)
        assert state.stage.value == "response"


class _InFlight(Interceptor):
    """Counts the workflow starts in flight at once (each passes through to the real server)."""

    def __init__(self) -> None:
        self.now = self.most = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        counter = self

        class Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput):
                counter.now += 1
                counter.most = max(counter.most, counter.now)
                try:
                    return await super().start_workflow(input)
                finally:
                    counter.now -= 1

        return Outbound(next)


async def test_open_imported_cases_are_handed_over_concurrently_and_a_repeat_starts_none(engine, tmp_path):
    """30 open imported cases (and a closed one) handed to the engine 8 starts at a time: every open
    case's workflow runs, the closed case gets none; a hand-over cut short and run again starts only
    the rest; a repeat starts none."""
    (tmp_path / "m.toml").write_text(MAPPING)
    opened = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    rows = [[f"OPEN-{i}", "New", (opened + timedelta(seconds=i)).isoformat(), "ann", "low"] for i in range(30)]
    rows += [["GONE-1", "New", opened.isoformat(), "ann", "low"],
             ["GONE-1", "INVALID", (opened + timedelta(minutes=1)).isoformat(), "ann", "low"]]
    summary = import_log(write(tmp_path / "log.csv", rows), load_mapping(tmp_path / "m.toml"), engine.store,
                         load_policy())
    open_ids = [case_id_for(SourceRef(system="helpdesk", external_id=f"OPEN-{i}")) for i in range(30)]
    closed_id = case_id_for(SourceRef(system="helpdesk", external_id="GONE-1"))
    assert sorted(summary.open_case_ids) == sorted(open_ids) and summary.closed == 1

    counter = _InFlight()
    client = Client(**{**engine.temporal.config(), "interceptors": [counter]})
    seen: list[int] = []
    cut = await start_live(client, engine.store, open_ids[:10], engine.task_queue, concurrency=8,
                           progress=seen.append)
    assert (cut.started, cut.already) == (10, 0) and seen == list(range(1, 11))
    handed = await start_live(client, engine.store, open_ids + [closed_id], engine.task_queue, concurrency=8)
    assert (handed.started, handed.already) == (20, 10)
    assert 1 < counter.most <= 8  # starts overlapped, never more than asked

    for case_id in open_ids:
        described = await engine.temporal.get_workflow_handle(workflow_id_for(case_id)).describe()
        assert described.status is WorkflowExecutionStatus.RUNNING
    with pytest.raises(RPCError) as missing:
        await engine.temporal.get_workflow_handle(workflow_id_for(closed_id)).describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND
    # Each running workflow took its case from the store: a command is answered on it.
    answered = await engine.cases.send(open_ids[17], Respond(command_id="handed-1", actor=Actor(id="ann", role=Role.agent),
                                                             message="on it"))
    assert answered.stage.value == "response" and answered.version == engine.store.state(open_ids[17]).version

    again = await start_live(client, engine.store, open_ids + [closed_id], engine.task_queue, concurrency=8)
    assert (again.started, again.already) == (0, 30)
    with pytest.raises(ValueError, match="concurrency"):
        await start_live(client, engine.store, open_ids, engine.task_queue, concurrency=0)
