"""casework's benchmark: `python -m bench.run` prints a JSON summary (see bench/README.md).

Sections: end-to-end cases against the floor (a bare update, and one update + one activity) on the same embedded
dev server and worker settings; projection catch-up against raw SQLite inserts; projection lag
under load; worker memory with many open cases; report query times over a large read model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from bench.commands import against_bare
from bench.floor import floor
from bench.lifecycle import COMMANDS_PER_CASE, drive
from bench.stats import latency_ms
from bench import hold, importing, projection, scaleout, timers
from bench.server import local_server
from casework.client import CaseworkClient
from casework.config import sqlite_env
from casework.logs import configure_logging
from casework.projector import open_envs, projection_process
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view
from worker import build_worker

SECTIONS = ("e2e", "projection", "reports", "import", "rebuild", "timers", "scaleout")
# Opt-in (`--only hold`), not in the default run: 100,000 cases take most of an hour on 2 cores.
OPT_IN = ("hold",)


async def end_to_end(env: WorkflowEnvironment, tmp: Path, cases: int, concurrency: int,
                     projection: str = "process", lean_history: bool = True) -> dict:
    """`projection`: "process" follows the store in a process of its own, as `casework run` does by
    default (casework/projector.py); "thread" in a thread of this process, beside the worker, as it
    did before; "off": no projection. `lean_history` False: the cases write the history of the
    workflow before LEAN_PATCH (the same code, the patch left inactive), for a before-and-after."""
    store = CaseStore(env=sqlite_env(tmp / "events.db"))
    reporting = sqlite_env(tmp / "reporting.db")
    follower = ReportProjection(store, open_view(reporting))  # the thread's runner; else only read for its lag
    queue = f"bench-{uuid.uuid4()}"
    client = CaseworkClient(env.client, queue)
    lags: list[int] = []
    stop = threading.Event()

    def sample_lag() -> None:
        while not stop.wait(0.5):
            lags.append(follower.lag().events_behind)

    async with contextlib.AsyncExitStack() as running:
        await running.enter_async_context(build_worker(env.client, store, queue, reporting=reporting,
                                                       lean_history=lean_history))
        if projection == "process":
            await running.enter_async_context(projection_process(
                functools.partial(open_envs, sqlite_env(tmp / "events.db"), reporting),
                "console", "warning"))
        elif projection == "thread":
            threading.Thread(target=follower.run, args=(stop,), daemon=True).start()
        if projection != "off":
            threading.Thread(target=sample_lag, daemon=True).start()
        latencies, elapsed = await drive(client, cases, concurrency)
        while projection != "off" and follower.lag().events_behind:
            await asyncio.sleep(0.1)
        stop.set()
    return {"cases": cases, "concurrency": concurrency, "projection": projection, "commands": len(latencies),
            "seconds": round(elapsed, 2), "cases_per_s": round(cases / elapsed, 2),
            "commands_per_s": round(len(latencies) / elapsed, 1), "latency_ms": latency_ms(latencies),
            "events_stored": store.recorder.max_notification_id(),
            "projection_lag_events": {"median": statistics.median(lags) if lags else 0,
                                      "max": max(lags) if lags else 0}}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--projection-events", type=int, default=100_000)
    parser.add_argument("--projection-batches", type=int, nargs="*", default=[1000],
                        help="projection: events per batch of the catch-up (each size its own rounds; the raw "
                             "baseline stays 1,000 rows a transaction)")
    parser.add_argument("--report-events", type=int, default=1_000_000)
    parser.add_argument("--timer-cases", type=int, default=10_000,
                        help="timers: open cases whose warnings and breaches fall in the same minute")
    parser.add_argument("--hold-cases", type=int, default=100_000,
                        help="timers: then open cases up to this many, waiting on timers (worker RSS); 0: none. "
                             "hold: open tickets imported and handed to the engine")
    parser.add_argument("--hold-minutes", type=float, default=60.0,
                        help="timers: the hold phase stops opening after this long (reports what it reached). "
                             "hold: how long the cases are held once all run")
    parser.add_argument("--hold-step", type=int, default=5000,
                        help="hold: the worker's RSS is recorded every this many cases started")
    parser.add_argument("--start-concurrency", type=int, default=16,
                        help="hold: workflow starts in flight at once while the open cases are handed over")
    parser.add_argument("--server-pragma", nargs="*", default=[],
                        help="hold: `temporal server start-dev --sqlite-pragma` values, e.g. journal_mode=wal "
                             "synchronous=normal")
    parser.add_argument("--worker-setting", nargs="*", default=[], metavar="CASEWORK_NAME=VALUE",
                        help="timers and hold: settings of the `casework run` worker, e.g. CASEWORK_MAX_CACHED_WORKFLOWS=500")
    parser.add_argument("--hold-shard", type=int, default=10_000,
                        help="hold: tickets per exported file (each imported by `casework import` while the "
                             "files before it are handed over)")
    parser.add_argument("--handover-by", type=float, default=None, metavar="MINUTES",
                        help="hold: hand no more cases over after this many minutes of the run (it goes on "
                             "with those started: what it reached)")
    parser.add_argument("--keep-dir", help="run in this directory and keep it (stores, logs, progress.jsonl)")
    parser.add_argument("--import-traces", type=int, default=None,
                        help="import/rebuild: the first this many traces of the BPIC 2013 log (default: all)")
    parser.add_argument("--scaleout-workers", type=int, nargs="*", default=[1, 2, 3],
                        help="scaleout: worker process counts, on PostgreSQL (--cases, --concurrency, --rounds)")
    parser.add_argument("--projection", choices=["process", "thread", "off"], default="process",
                        help="e2e: where the reporting projection follows the store during casework's rounds "
                             "(process: as `casework run` does by default)")
    parser.add_argument("--before", action="store_true",
                        help="e2e: each round also runs casework with the history of before LEAN_PATCH "
                             "(workflows/service_case.py), a third side in the same rounds")
    parser.add_argument("--only", nargs="*", default=list(SECTIONS), choices=SECTIONS + OPT_IN,
                        help="sections to run (default: all but the opt-in `hold`: --hold-cases open tickets "
                             "imported and handed to the engine, then held --hold-minutes)")
    parser.add_argument("--backends", nargs="*", default=["sqlite", "postgres"], choices=["sqlite", "postgres"],
                        help="where the projection and report benchmarks run (postgres: a throwaway cluster)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of each A/B comparison (commands, projection) and of the report timings")
    parser.add_argument("--out", help="also write the JSON summary to this file (the dev server prints to stdout)")
    args = parser.parse_args()
    random.seed(1)
    configure_logging("console", "warning")
    summary: dict = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                     "command": "python -m bench.run " + " ".join(sys.argv[1:]),
                     "at": datetime.now(UTC).isoformat(timespec="seconds")}
    with (contextlib.nullcontext(args.keep_dir) if args.keep_dir else
          tempfile.TemporaryDirectory(prefix="casework-bench-")) as d:
        tmp = Path(d)
        tmp.mkdir(parents=True, exist_ok=True)
        if "e2e" in args.only:
            await temporal_parts(args, tmp, summary)
        parts = [p for p in ("import", "rebuild") if p in args.only]
        if parts:
            (tmp / "import").mkdir()
            summary.update(importing.run(tmp / "import", parts, limit=args.import_traces, rounds=args.rounds))
        if "scaleout" in args.only:
            (tmp / "scaleout").mkdir()
            summary["scaleout"] = await scaleout.run(tmp / "scaleout", tuple(args.scaleout_workers), args.cases,
                                                     args.concurrency, args.rounds)
        if "timers" in args.only:
            (tmp / "timers").mkdir()
            summary["timers"] = await timers.run(tmp / "timers", args.timer_cases, args.hold_cases,
                                                 args.hold_minutes * 60,
                                                 worker_env=dict(s.split("=", 1) for s in args.worker_setting))
        if "hold" in args.only:
            (tmp / "hold").mkdir()
            summary["hold"] = await hold.run(tmp / "hold", args.hold_cases, args.hold_minutes * 60,
                                             step=args.hold_step, concurrency=args.start_concurrency,
                                             server_pragmas=tuple(args.server_pragma),
                                             worker_env=dict(s.split("=", 1) for s in args.worker_setting),
                                             handover_by=None if args.handover_by is None else args.handover_by * 60,
                                             shard=args.hold_shard)
        parts = [p for p in ("projection", "reports") if p in args.only]
        if parts:
            summary.update(projection.run(tmp, args.backends, args.projection_events, args.report_events,
                                          args.rounds, parts, args.projection_batches))
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")


async def temporal_parts(args: argparse.Namespace, tmp: Path, summary: dict) -> None:
    env = await local_server(tmp)
    try:
        if "e2e" in args.only:
            # The floor is a bare update (no activity), measured A/B alternately with casework's
            # commands, in --rounds rounds; the update-plus-activity floor of before is the second line.
            casework = functools.partial(end_to_end, projection=args.projection)
            before = (functools.partial(end_to_end, projection=args.projection, lean_history=False)
                      if args.before else None)
            ab = await against_bare(env, tmp, casework, args.cases, args.concurrency, COMMANDS_PER_CASE,
                                    args.rounds, before=before)
            summary["commands_vs_bare_update"] = ab
            last = ab["rounds"][-1]["casework"]
            base = await floor(env.client, last["commands"], args.concurrency, COMMANDS_PER_CASE,
                               with_activity=True)
            summary["floor_update_with_activity"] = base
            summary["commands_per_s_ratio_to_update_with_activity"] = round(
                last["commands_per_s"] / base["round_trips_per_s"], 3)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
