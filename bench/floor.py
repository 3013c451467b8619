"""The floor casework's commands are measured against, on the same server and worker settings: the
cheapest Temporal round trip shaped like a command. Two lines of it, one workflow and one driver:

- the **bare update** (`ping`): an update that changes a counter and returns it, no activity — the
  least a command can cost in Temporal, the floor of issue 14;
- the **update running one activity** (`ping_activity`): the floor before issue 14, kept as a
  second line (casework's own append is a local activity, so it can beat this one).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.stats import latency_ms


@activity.defn(name="floor_noop")
def floor_noop(n: int) -> int:
    return n + 1


@workflow.defn(name="FloorWorkflow")
class FloorWorkflow:
    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.count

    @workflow.update
    async def ping(self, n: int) -> int:
        self.count = n
        return self.count

    @workflow.update
    async def ping_activity(self, n: int) -> int:
        self.count = await workflow.execute_activity(floor_noop, n, start_to_close_timeout=timedelta(seconds=30))
        return self.count

    @workflow.signal
    def finish(self) -> None:
        self.done = True


async def floor(client: Client, round_trips: int, concurrency: int, per_workflow: int,
                with_activity: bool = False, max_activities: int = 32) -> dict:
    """`round_trips` updates, `per_workflow` on each workflow in turn, `concurrency` workflows at once:
    the shape of casework's cases (one open plus the lifecycle's commands). `with_activity`: the
    update runs one activity (the second line), else it is bare."""
    queue = f"floor-{uuid.uuid4()}"
    update = FloorWorkflow.ping_activity if with_activity else FloorWorkflow.ping
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            handle = await client.start_workflow(FloorWorkflow.run, id=f"floor-{uuid.uuid4()}", task_queue=queue)
            for n in range(per_workflow):
                t = time.perf_counter()
                await handle.execute_update(update, n)
                latencies.append(time.perf_counter() - t)
            await handle.signal(FloorWorkflow.finish)

    async with Worker(client, task_queue=queue, workflows=[FloorWorkflow], activities=[floor_noop],
                      activity_executor=ThreadPoolExecutor(max_activities), max_concurrent_activities=max_activities):
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(max(1, round_trips // per_workflow))))
        elapsed = time.perf_counter() - start
    return {"round_trips": len(latencies), "seconds": round(elapsed, 2),
            "round_trips_per_s": round(len(latencies) / elapsed, 1), "latency_ms": latency_ms(latencies)}
