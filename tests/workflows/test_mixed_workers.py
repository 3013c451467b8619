"""A rolling upgrade from the version before LEAN_PATCH (5af4abe, replaying in a process of its own).
With CASEWORK_LEAN_HISTORY off, what this worker writes replays on the older workflow code, as
config.py and docs/cluster.md say; with it on (the default) it does not: the older worker's task fails
(Temporal retries it until a worker of this version takes it), which is why the setting is off while
older workers poll the task queue."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from casework.client import CaseworkClient
from domain.ids import workflow_id_for
from tests.conftest import sqlite_store
from tests.factory import command, open_case
from tests.projections.test_dashboard_upgrade import old_checkout
from worker import build_worker

OLD_REPLAY = """
import asyncio, sys
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from workflows.service_case import ServiceCaseWorkflow
history = WorkflowHistory.from_json(sys.argv[1], open(sys.argv[2]).read())
result = asyncio.run(Replayer(workflows=[ServiceCaseWorkflow], data_converter=pydantic_data_converter)
                     .replay_workflow(history, raise_on_replay_failure=False))
print("FAILURE", result.replay_failure) if result.replay_failure else print("OK")
"""


async def _history(temporal_env, store, lean: bool) -> tuple[str, str]:
    queue = f"casework-test-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, queue, lean_history=lean):
        cases = CaseworkClient(temporal_env.client, queue)
        cid = (await cases.open_case(open_case())).case_id
        await cases.send(cid, command("retriage", priority="urgent", reason="it is down"))
        await cases.send(cid, command("respond", message="on it"))
        await cases.send(cid, command("close", reason="cancelled"))
        await cases.wait_closed(cid)
    history = await temporal_env.client.get_workflow_handle(workflow_id_for(cid)).fetch_history()
    return workflow_id_for(cid), history.to_json()


@pytest.mark.parametrize("lean", [False, True], ids=["lean-off", "lean-on"])
async def test_an_older_worker_replays_what_this_one_wrote_only_with_lean_off(temporal_env, tmp_path, lean):
    wid, text = await _history(temporal_env, sqlite_store(tmp_path / "e.db"), lean)
    (tmp_path / "h.json").write_text(text)
    old = old_checkout(tmp_path)
    done = subprocess.run([sys.executable, "-c", OLD_REPLAY, wid, str(tmp_path / "h.json")], cwd=old,
                          env={"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    if lean:
        assert last.startswith("FAILURE") and "lean-history-2026-11" in last, done.stdout[-3000:]
    else:
        assert last == "OK", done.stdout[-3000:]
