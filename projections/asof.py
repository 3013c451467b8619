"""Reports as of an instant: the reporting tables built afresh from the events stored up to then,
in a throwaway SQLite database, and the same report functions run on them (issue 13).

"Up to then" is by the instant the engine decided each event (`recorded_at`; a forgetting's `at`):
what a live, caught-up projection had applied at that instant. So a report asked `--as-of T` equals
what the live report said at T. Reports that measure against "now" (backlog, at-risk) are given T.
Nothing is written to the live tables; the work is a rebuild's, so it is as slow as one.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from domain.store import CaseStore, Forgotten
from projections import reports
from projections.runner import ReportProjection, open_view
from projections.view import ReportView

UPSTREAM = "as-of"


def _when(item: object) -> datetime | None:
    if isinstance(item, Forgotten):
        return item.at
    return getattr(item, "recorded_at", None)


@contextlib.contextmanager
def view_as_of(store: CaseStore, at: datetime, batch_size: int = 2000) -> Iterator[ReportView]:
    """A reporting view holding exactly the events recorded at or before `at` (a temporary database,
    gone when the block ends)."""
    with tempfile.TemporaryDirectory(prefix="casework-as-of-") as tmp:
        db = Path(tmp) / "reports.db"
        view = open_view({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)})
        projection = ReportProjection(store, view, batch_size, upstream=UPSTREAM)
        read, applied = 0, 0
        later: set[str] = set()  # cases with an event after `at`: nothing after it counts either
        while batch := projection._next(read, batch_size):
            read = batch[-1][1]
            kept = []
            for item, position in batch:
                case = getattr(item, "case_id", None)
                if item is None or case in later:
                    continue
                when = _when(item)
                if when is not None and when > at:
                    if case is not None:
                        later.add(case)
                    continue
                kept.append((item, position))
            if kept:
                view.apply_batch(kept, UPSTREAM, after=applied)
                applied = kept[-1][1]
        yield view


def report_as_of(store: CaseStore, name: str, at: datetime, by: str | None = None) -> list[dict]:
    """One of the reports (projections/reports.py REPORTS, or "at_risk"), as it read at `at`."""
    with view_as_of(store, at) as view:
        return run_report(view, name, at, by)


def run_report(view: ReportView, name: str, now: datetime, by: str | None = None,
               within: timedelta = timedelta(hours=4)) -> list[dict]:
    """Run a report the way the live command does, with `now` for the reports that measure against it."""
    if name == "at_risk":
        return reports.at_risk(view, within, now=now)
    fn = reports.REPORTS[name]
    if name == "backlog":
        return fn(view, now=now)
    return fn(view, by) if by and "by" in fn.__code__.co_varnames else fn(view)
