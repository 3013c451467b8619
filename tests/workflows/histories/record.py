"""Records the case histories tests/workflows/test_replay.py replays: run it with the workflow code a
deployed worker runs (`python -m tests.workflows.histories.record tests/workflows/histories TAG`, TAG
naming the commit that records them, e.g. main-5af4abe), commit the .json.gz files it writes, and
every later workflow change must still replay them (a case started by that code may still be running when a new worker takes it).

Each scenario exercises one kind of command sequence: the lifecycle the benchmark drives, a burst of
commands decided in one store step, SLA timers firing (warnings, a breach and its escalation, a pause
while waiting on the customer, the follow-up's callbacks until the case closes by itself), a policy
re-applied by a supervisor, and a case left open with a running timer (a history that goes on)."""

from __future__ import annotations

import asyncio
import gzip
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from bench.lifecycle import LIFECYCLE
from casework.client import CaseworkClient
from casework.config import sqlite_env, temporal_binary
from domain.ids import workflow_id_for
from domain.model import Actor, Role
from domain.store import CaseStore
from tests.factory import CUSTOMER, SUPERVISOR, command, open_case
from worker import build_worker
from workflows.contract import SEARCH_ATTRIBUTES

POLICY = str(Path(__file__).parent.parent / "sla_policy.toml")


async def lifecycle(cases: CaseworkClient) -> str:
    cid = (await cases.open_case(open_case())).case_id
    for kind, actor, fields in LIFECYCLE:
        actor = CUSTOMER if actor.role is Role.customer else Actor(id="agent-alice", role=Role.agent)
        await cases.send(cid, command(kind, actor=actor, **fields))
    await cases.wait_closed(cid)
    return cid


async def burst(cases: CaseworkClient) -> str:
    cid = (await cases.open_case(open_case())).case_id
    await asyncio.gather(*(cases.send(cid, command("add_note", text=f"note {i}")) for i in range(12)),
                         cases.send(cid, command("retriage", actor=SUPERVISOR, priority="high", reason="vip")))
    await cases.send(cid, command("respond", message="On it"))
    await cases.send(cid, command("close", reason="cancelled"))
    await cases.wait_closed(cid)
    return cid


async def still_open(cases: CaseworkClient) -> str:
    cid = (await cases.open_case(open_case())).case_id
    await cases.send(cid, command("retriage", priority="high", reason="vip"))
    await cases.send(cid, command("request_clarification", question="which printer?"))
    await cases.send(cid, command("record_customer_reply", CUSTOMER, message="the second one"))
    return cid


async def timers(env: WorkflowEnvironment, cases: CaseworkClient) -> str:
    async def forward(cid: str, duration: timedelta) -> None:
        await env.fast_forward(env.client.get_workflow_handle(workflow_id_for(cid)), duration)
        await asyncio.sleep(0.5)

    cid = (await cases.open_case(open_case())).case_id
    await forward(cid, timedelta(minutes=70))  # warnings at 30, 45, 54 min; the breach at 1 h escalates
    await cases.send(cid, command("request_clarification", question="which printer?"))
    await forward(cid, timedelta(minutes=30))  # paused
    await cases.send(cid, command("record_customer_reply", CUSTOMER, message="the second one"))
    await cases.send(cid, command("reapply_policy", SUPERVISOR, reason="new contract"))
    await cases.send(cid, command("respond", message="on it"))
    await cases.send(cid, command("propose_solution", summary="fixed"))
    await cases.send(cid, command("start_follow_up"))
    for _ in range(4):  # callbacks every 24 h, then it closes as no response
        await forward(cid, timedelta(hours=24, minutes=1))
    await cases.wait_closed(cid)
    return cid


async def save(client: Client, cid: str, name: str, folder: Path) -> None:
    history = await client.get_workflow_handle(workflow_id_for(cid)).fetch_history()
    (folder / f"{name}.json.gz").write_bytes(gzip.compress(history.to_json().encode(), 9))
    print(name, len(history.events), "events")


async def main(folder: Path, tag: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".record-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
            search_attributes=SEARCH_ATTRIBUTES)
        try:
            queue = f"record-{uuid.uuid4()}"
            async with build_worker(env.client, CaseStore(env=sqlite_env(tmp / "a.db")), queue):
                cases = CaseworkClient(env.client, queue)
                for name, scenario in (("lifecycle", lifecycle), ("burst", burst), ("open", still_open)):
                    await save(env.client, await scenario(cases), f"{name}-{tag}", folder)
        finally:
            await env.shutdown()
        env = await WorkflowEnvironment.start_time_skipping_v2(
            ts_config=TimeSkippingConfig(enabled=False), dev_server_existing_path=temporal_binary(),
            data_converter=pydantic_data_converter, search_attributes=SEARCH_ATTRIBUTES,
            dev_server_extra_args=["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"])
        try:
            queue = f"record-{uuid.uuid4()}"
            async with build_worker(env.client, CaseStore(env=sqlite_env(tmp / "b.db")), queue, policy_path=POLICY):
                await save(env.client, await timers(env, CaseworkClient(env.client, queue)), f"timers-{tag}", folder)
        finally:
            await env.shutdown()
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
