"""Reports as of an instant: the reporting tables built afresh from the events that count up to
then, in a throwaway SQLite database, and the same report functions run on them (issue 13).

Two clocks, and this module is the one home of the rule (docs/history.md, "Which clock"):

- **as of T** (business time): the events that had happened by T, by the instant each was decided
  (`recorded_at`; a forgetting's `at`). For an imported event that is the log's instant, so "the
  backlog on 1 March" counts the imported tickets open then, although the import ran in June.
- **known at K** (the store's time): only the events the store held at K. A live event was stored
  when it was decided (its recorded_at); an imported one when the import stored it (`imported_at`).
  As of K and known at K is what a live, caught-up projection had applied at K: what the live
  report said then (before an import, nothing of the imported cases).

For the engine's own events the two clocks agree. Reports that measure against "now" (backlog,
at-risk) are given the as-of instant. Nothing is written to the live tables; the work is a
rebuild's, so it is as slow as one.
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


def happened_at(item: object) -> datetime | None:
    """Business time: when an event was decided (for an import, the log's instant)."""
    if isinstance(item, Forgotten):
        return item.at
    return getattr(item, "recorded_at", None)


def stored_at(item: object) -> datetime | None:
    """The store's time: when it held the event (an import's stamp, else the decision instant)."""
    return getattr(item, "imported_at", None) or happened_at(item)


def counts(item: object, as_of: datetime, known_at: datetime | None = None) -> bool:
    """Whether an event counts in a report as of `as_of` (business time), known at `known_at` (the
    store's time; None: whatever the store holds now)."""
    when = happened_at(item)
    if when is not None and when > as_of:
        return False
    stored = stored_at(item)
    return known_at is None or stored is None or stored <= known_at


@contextlib.contextmanager
def view_as_of(store: CaseStore, at: datetime, batch_size: int = 2000,
               known_at: datetime | None = None) -> Iterator[ReportView]:
    """A reporting view holding exactly the events that count as of `at`, known at `known_at`
    (`counts`; a temporary database, gone when the block ends)."""
    with tempfile.TemporaryDirectory(prefix="casework-as-of-") as tmp:
        db = Path(tmp) / "reports.db"
        view = open_view({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)})
        projection = ReportProjection(store, view, batch_size, upstream=UPSTREAM)
        read, applied = 0, 0
        later: set[str] = set()  # cases with an event that does not count: nothing after it counts either
        while batch := projection._next(read, batch_size):
            read = batch[-1][1]
            kept = []
            for item, position in batch:
                case = getattr(item, "case_id", None)
                if item is None or case in later:
                    continue
                if not counts(item, at, known_at):
                    if case is not None:
                        later.add(case)
                    continue
                kept.append((item, position))
            if kept:
                view.apply_batch(kept, UPSTREAM, after=applied)
                applied = kept[-1][1]
        yield view


def report_as_of(store: CaseStore, name: str, at: datetime, by: str | None = None,
                 known_at: datetime | None = None) -> list[dict]:
    """One of the reports (projections/reports.py REPORTS, or "at_risk") as of `at`, from what the
    store held at `known_at` (None: all it holds now)."""
    with view_as_of(store, at, known_at=known_at) as view:
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
