"""A projection runner in an OS process of its own, for the tests (the same loop `casework projections
run` and the worker's thread use): `python -m tests.projections.runner_process --store-env JSON
--reporting-env JSON [--no-lease] [--batch-size N] [--stats FILE]`. Stops on SIGTERM; logs JSON lines
on stderr; writes how many events it applied and how many batches were refused to --stats."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
from pathlib import Path

from casework.logs import configure_logging
from domain.store import CaseStore
from projections.lease import postgres_ddl_lock
from projections.runner import ReportProjection, open_view


class CountingProjection(ReportProjection):
    applied = 0

    def step(self) -> int:
        n = super().step()
        self.applied += n
        return n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store-env", required=True)
    parser.add_argument("--reporting-env", required=True)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--no-lease", action="store_true")
    parser.add_argument("--stats")
    args = parser.parse_args()
    configure_logging("json", "debug")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store_env = json.loads(args.store_env)
    postgres = store_env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres"
    # Two runners starting together must not race PostgreSQL's CREATE ... IF NOT EXISTS.
    with postgres_ddl_lock(store_env) if postgres else contextlib.nullcontext():
        store = CaseStore(env=store_env)
    projection = CountingProjection(store, open_view(json.loads(args.reporting_env)), args.batch_size)
    projection.run(stop, idle_seconds=0.02, exclusive=not args.no_lease, standby_seconds=0.1)
    if args.stats:
        Path(args.stats).write_text(json.dumps({"applied": projection.applied, "refused": projection.refused,
                                                "failed": projection.failed}))


if __name__ == "__main__":
    main()
