"""What one case's lifecycle writes into Temporal's history: events by type and their bytes, for the
bench's lifecycle (bench/lifecycle.py) driven one case at a time, and the bare update's 8 round trips
beside it, and casework writing the history of before LEAN_PATCH (workflows/service_case.py). The
server's CPU per command follows the count of events and the tasks behind them
(bench/README.md, "Commands"). `python -m bench.history_events [CASES] [--save DIR]` (DIR: each
case's history as JSON, e.g. to keep one as a replay fixture)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import tempfile
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from bench.floor import floor
from bench.lifecycle import COMMANDS_PER_CASE, drive
from bench.server import local_server
from casework.client import CaseworkClient
from casework.config import sqlite_env
from casework.logs import configure_logging
from domain.store import CaseStore
from worker import build_worker


def census(history: WorkflowHistory) -> dict:
    """Events by type (the type's short name) and the history's size in bytes."""
    kinds = collections.Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events)
    return {"events": len(history.events), "bytes": sum(e.ByteSize() for e in history.events),
            "by_type": dict(sorted(kinds.items()))}


async def casework_histories(client: Client, tmp: Path, cases: int, lean: bool = True) -> list[WorkflowHistory]:
    store = CaseStore(env=sqlite_env(tmp / f"events-{lean}.db"))
    queue = f"history-{uuid.uuid4()}"
    async with build_worker(client, store, queue, lean_history=lean):
        await drive(CaseworkClient(client, queue), cases, 1)  # one at a time: no batching by chance
    return [await client.get_workflow_handle(w).fetch_history() for w in await _listed(client, queue, cases)]


async def _listed(client: Client, queue: str, n: int) -> list[str]:
    """The ids of the `n` workflows that ran on `queue` (visibility is eventually consistent: waits)."""
    for _ in range(100):
        ids = [w.id async for w in client.list_workflows(f"TaskQueue = '{queue}'")]
        if len(ids) >= n:
            return sorted(ids)
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{n} workflows on {queue} were not listed")


async def bare_history(client: Client) -> WorkflowHistory:
    await floor(client, COMMANDS_PER_CASE, 1, COMMANDS_PER_CASE)
    ids = [w.id async for w in client.list_workflows("WorkflowType = 'FloorWorkflow'")]
    for _ in range(100):  # visibility is eventually consistent
        if ids:
            return await client.get_workflow_handle(ids[0]).fetch_history()
        await asyncio.sleep(0.2)
        ids = [w.id async for w in client.list_workflows("WorkflowType = 'FloorWorkflow'")]
    raise RuntimeError("the bare update's workflow was not listed")


async def main(cases: int, save: Path | None) -> None:
    configure_logging("console", "warning")
    with tempfile.TemporaryDirectory() as d:
        env = await local_server(Path(d))
        try:
            histories = await casework_histories(env.client, Path(d), cases)
            before = await casework_histories(env.client, Path(d), cases, lean=False)
            bare = await bare_history(env.client)
        finally:
            await env.shutdown()
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for h in histories:
            (save / f"{h.workflow_id}.json").write_text(h.to_json())
    print(json.dumps({"commands_per_case": COMMANDS_PER_CASE, "casework": [census(h) for h in histories],
                      "casework_before_lean_patch": [census(h) for h in before],
                      "bare_update": census(bare)}, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", type=int, nargs="?", default=2)
    parser.add_argument("--save", type=Path, help="write each case's history as JSON into this folder")
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.save))
