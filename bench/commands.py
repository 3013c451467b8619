"""Commands against the floor: casework's lifecycle commands and a bare Temporal update that does
nothing (no activity), measured alternately (A/B) on the same dev server, worker settings and
concurrency, so a noisy machine slows both sides of a round alike. The issue's bar: casework
commands/s >= 0.8 x bare round trips/s, casework p99 <= 1.5 x bare p99 (medians of the rounds)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    """One update that changes a counter and returns it: the least a command can cost in Temporal."""

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

    @workflow.signal
    def finish(self) -> None:
        self.done = True


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency_ms(latencies: list[float]) -> dict[str, float]:
    return {p: round(percentile(latencies, q) * 1000, 1) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))}


async def bare(env: WorkflowEnvironment, round_trips: int, concurrency: int, per_workflow: int,
               max_activities: int = 32) -> dict:
    """`round_trips` bare updates, `per_workflow` on each workflow in turn, `concurrency` workflows at
    once: the same shape as casework's cases (one open plus the lifecycle's commands)."""
    queue = f"bare-{uuid.uuid4()}"
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            handle = await env.client.start_workflow(BareWorkflow.run, id=f"bare-{uuid.uuid4()}", task_queue=queue)
            for n in range(per_workflow):
                t = time.perf_counter()
                await handle.execute_update(BareWorkflow.ping, n)
                latencies.append(time.perf_counter() - t)
            await handle.signal(BareWorkflow.finish)

    async with Worker(env.client, task_queue=queue, workflows=[BareWorkflow],
                      activity_executor=ThreadPoolExecutor(max_activities), max_concurrent_activities=max_activities):
        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(max(1, round_trips // per_workflow))))
        elapsed = time.perf_counter() - start
    return {"round_trips": len(latencies), "seconds": round(elapsed, 2),
            "round_trips_per_s": round(len(latencies) / elapsed, 1), "latency_ms": latency_ms(latencies)}


async def against_bare(env: WorkflowEnvironment, tmp: Path, casework: Callable[..., Awaitable[dict]],
                       cases: int, concurrency: int, per_case: int, rounds: int) -> dict:
    """Rounds of casework then bare, alternately; each round's ratios, and their medians."""
    out = []
    for r in range(rounds):
        round_dir = tmp / f"ab-{r}"
        round_dir.mkdir()
        cw = await casework(env, round_dir, cases, concurrency)
        floor = await bare(env, cw["commands"], concurrency, per_case)
        out.append({"casework": cw, "bare": floor,
                    "throughput_ratio": round(cw["commands_per_s"] / floor["round_trips_per_s"], 3),
                    "p99_ratio": round(cw["latency_ms"]["p99"] / floor["latency_ms"]["p99"], 3)})
    return {"rounds": out,
            "median_throughput_ratio": round(statistics.median(o["throughput_ratio"] for o in out), 3),
            "median_p99_ratio": round(statistics.median(o["p99_ratio"] for o in out), 3),
            "median_casework_commands_per_s": statistics.median(o["casework"]["commands_per_s"] for o in out),
            "median_bare_round_trips_per_s": statistics.median(o["bare"]["round_trips_per_s"] for o in out)}
