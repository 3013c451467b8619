"""Commands against the floor: casework's lifecycle commands and a bare Temporal update that does
nothing (no activity, bench/floor.py), measured alternately (A/B) on the same dev server, worker settings and
concurrency, so a noisy machine slows both sides of a round alike. The issue's bar: casework
commands/s >= 0.8 x bare round trips/s, casework p99 <= 1.5 x bare p99 (medians of the rounds)."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench.floor import floor as measure_floor


async def against_bare(env: WorkflowEnvironment, tmp: Path, casework: Callable[..., Awaitable[dict]],
                       cases: int, concurrency: int, per_case: int, rounds: int,
                       before: Callable[..., Awaitable[dict]] | None = None) -> dict:
    """Rounds of casework then bare, alternately; each round's ratios, and their medians. `before`: a
    third side in each round (casework as it was before a change), with its own ratios to the bare."""
    out = []
    for r in range(rounds):
        round_dir = tmp / f"ab-{r}"
        round_dir.mkdir()
        cw = await casework(env, round_dir, cases, concurrency)
        floor = await measure_floor(env.client, cw["commands"], concurrency, per_case)
        row = {"casework": cw, "bare": floor, **_ratios(cw, floor)}
        if before is not None:
            (round_dir / "before").mkdir()
            old = await before(env, round_dir / "before", cases, concurrency)
            row["casework_before"] = {**old, **_ratios(old, floor)}
        out.append(row)
    summary = {"rounds": out,
               "median_throughput_ratio": round(statistics.median(o["throughput_ratio"] for o in out), 3),
               "median_p99_ratio": round(statistics.median(o["p99_ratio"] for o in out), 3),
               "median_casework_commands_per_s": statistics.median(o["casework"]["commands_per_s"] for o in out),
               "median_bare_round_trips_per_s": statistics.median(o["bare"]["round_trips_per_s"] for o in out)}
    if before is not None:
        summary["before"] = {
            "median_throughput_ratio": round(statistics.median(
                o["casework_before"]["throughput_ratio"] for o in out), 3),
            "median_p99_ratio": round(statistics.median(o["casework_before"]["p99_ratio"] for o in out), 3),
            "median_commands_per_s": statistics.median(o["casework_before"]["commands_per_s"] for o in out)}
    return summary


def _ratios(casework: dict, floor: dict) -> dict:
    return {"throughput_ratio": round(casework["commands_per_s"] / floor["round_trips_per_s"], 3),
            "p99_ratio": round(casework["latency_ms"]["p99"] / floor["latency_ms"]["p99"], 3)}
