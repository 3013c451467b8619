"""Scale-out: command throughput with 1, 2 and 3 `casework run` worker processes on one task queue,
sharing a PostgreSQL event store, against one file-backed dev server (bench.fault's Cluster: every
part an OS process of its own; PostgreSQL a throwaway cluster, as tests/pg.py starts it).

For each worker count the same load (bench.lifecycle: full-lifecycle cases, `concurrency` at once)
runs once per round, the counts in turn (1, 2, 3, then 3, 2, 1, ...), so drift on a shared machine
falls on every count alike. The workers run without the projection and the notifications (those are
single processes beside the workers: docs/cluster.md), the HTTP API off.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from bench.fault import Cluster, Config, postgres
from bench.lifecycle import drive
from bench.stats import latency_ms
from casework.client import CaseworkClient


async def run(root: Path, counts: tuple[int, ...] = (1, 2, 3), cases: int = 60, concurrency: int = 20,
              rounds: int = 1) -> dict:
    cfg = Config(workers=max(counts), store="postgres", log_level="warning")
    with postgres(cfg) as pg:
        cluster = Cluster(root, cfg, pg)
        del cluster.base["CASEWORK_SLA_POLICY"]  # the shipped policy, as bench.run's other sections
        try:
            await cluster.start_server()
            return await _run(cluster, counts, cases, concurrency, rounds)
        finally:
            cluster.stop()


async def _run(cluster: Cluster, counts: tuple[int, ...], cases: int, concurrency: int, rounds: int) -> dict:
    runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
    client = await Client.connect(cluster.address, data_converter=pydantic_data_converter, runtime=runtime)
    cases_client = CaseworkClient(client)
    runs: dict[int, list[dict]] = {k: [] for k in counts}
    for r in range(rounds):
        for k in (counts if r % 2 == 0 else tuple(reversed(counts))):
            for i in range(k):
                cluster.start_worker(i)
            try:
                await polling(client, [p.pid for p in cluster.workers[:k] if p is not None])
                await drive(cases_client, 2, 2)  # warm: connections, caches, the policy read
                procs = {"server": cluster.server, **{f"worker-{i}": p for i, p in enumerate(cluster.workers[:k])}}
                before = {name: cpu_seconds(p.pid) for name, p in procs.items() if p is not None}
                latencies, elapsed = await drive(cases_client, cases, concurrency)
                used = {name: cpu_seconds(procs[name].pid) - t for name, t in before.items()}
            finally:
                cluster.stop_workers()
                cluster.workers = [None] * len(cluster.workers)
            runs[k].append({"commands": len(latencies), "seconds": round(elapsed, 2),
                            "commands_per_s": round(len(latencies) / elapsed, 1), "latency_ms": latency_ms(latencies),
                            # each process's CPU over the load, in cores (1.0: one core busy all along)
                            "cores_busy": {name: round(t / elapsed, 2) for name, t in used.items()}})
    base = statistics.median(x["commands_per_s"] for x in runs[counts[0]])
    return {"store": "postgres", "cases": cases, "concurrency": concurrency, "rounds": rounds,
            "workers": {str(k): {"median_commands_per_s": statistics.median(x["commands_per_s"] for x in v),
                                 "median_p99_ms": statistics.median(x["latency_ms"]["p99"] for x in v),
                                 f"ratio_to_{counts[0]}": round(statistics.median(
                                     x["commands_per_s"] for x in v) / base, 3),
                                 "runs": v} for k, v in runs.items()}}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def polling(client: Client, pids: list[int], timeout: float = 60) -> None:
    """Wait until every one of these worker processes polls the queue's workflow tasks (its identity
    starts with its pid: casework/queue_owner.py)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name="casework"),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        seen = {p.identity.split("@", 1)[0] for p in answer.pollers}
        if all(str(pid) in seen for pid in pids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {pids} did not all poll within {timeout} s (polling: {sorted(seen)})")
        await asyncio.sleep(0.5)
