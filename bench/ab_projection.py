"""One round of projection catch-up from an existing SQLite event store into a fresh reporting
database, with whichever checkout's code is first on PYTHONPATH: for comparing two versions on the
same events (bench/README.md). `--make N` first writes a synthetic store of at least N events.

    PYTHONPATH=. python bench/ab_projection.py /tmp/ab-events.db --make 10000
    PYTHONPATH=/path/to/old/checkout python bench/ab_projection.py /tmp/ab-events.db
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
    args = parser.parse_args()
    store = CaseStore(env=sqlite_env(Path(args.events_db)))
    if args.make:
        from bench.synthetic import write_cases

        write_cases(store, args.make)
    view = open_view(sqlite_env(Path(tempfile.mkdtemp()) / "reporting.db"))
    start = time.perf_counter()
    applied = ReportProjection(store, view, batch_size=1000).catch_up()
    print(json.dumps({"events": applied, "events_per_s": round(applied / (time.perf_counter() - start))}))


if __name__ == "__main__":
    main()
