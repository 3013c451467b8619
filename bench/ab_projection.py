"""One round of projection catch-up from an existing SQLite event store into a fresh reporting
database, with whichever checkout's code is first on PYTHONPATH: for comparing two versions on the
same events (bench/README.md). `--make N` first writes a synthetic store of at least N events.

    PYTHONPATH=. python bench/ab_projection.py /tmp/ab-events.db --make 10000
    PYTHONPATH=/path/to/old/checkout python bench/ab_projection.py /tmp/ab-events.db

`--zone Asia/Shanghai`: the reporting environment names the zone the dashboard's days are kept in,
as casework's own does (config.reporting_env; a checkout without dashboard_days ignores it).
Prints the events per second of wall time and the process's CPU seconds (SQLite works in-process,
so on a machine other jobs load, the CPU compares versions better than the wall time).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from casework.config import sqlite_env
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events_db")
    parser.add_argument("--make", type=int, help="write a synthetic store of at least this many events first")
    parser.add_argument("--zone", default="", help="keep the dashboard's days in this zone")
    args = parser.parse_args()
    store = CaseStore(env=sqlite_env(Path(args.events_db)))
    if args.make:
        from bench.synthetic import write_cases

        write_cases(store, args.make)
    env = sqlite_env(Path(tempfile.mkdtemp()) / "reporting.db")
    if args.zone:
        env["CASEWORK_DASHBOARD_ZONE"] = args.zone  # projections.dashboard.ZONE_KEY, which an older checkout lacks
    view = open_view(env)
    start, cpu = time.perf_counter(), time.process_time()
    applied = ReportProjection(store, view, batch_size=1000).catch_up()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"events": applied, "events_per_s": round(applied / wall), "cpu_s": round(cpu, 3),
                      "zone": args.zone}))


if __name__ == "__main__":
    main()
