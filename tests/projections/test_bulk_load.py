"""A fresh view's backlog is loaded in bulk (projections.runner.ReportProjection.bulk): on SQLite the
secondary indexes are dropped while it loads and built after it, and the dashboard's days are derived
once it ends. What must hold: the rows are the oracle's (evolve, event by event); the indexes and the
days are whole after the load however it ends (caught up, an error, a stop; a kill:
test_projection_killed.py); and tables that are not fresh, or a backlog of a few batches, are loaded
batch by batch as ever, their indexes and days kept throughout."""

from __future__ import annotations

import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from casework.config import sqlite_env
from projections.runner import ReportProjection, open_view
from projections.schema import INDEXES
from tests.projections.test_batched_rows import ZONE, assert_equal_to_the_oracle, interleaved  # noqa: F401
from tests.projections.test_read_models import backend  # noqa: F401 - the (store, reporting env) fixture
from tests.web.test_console_figures_oracle import assert_days_equal_the_cases


def indexes(view) -> dict[str, str]:
    """The view's secondary indexes (of schema.INDEXES) as the database lists them: name -> SQL."""
    if view.placeholder == "?":
        rows = view.query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        return {r["name"]: r["sql"] for r in rows if r["name"] in INDEXES}
    rows = view.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'reporting'")
    return {r["indexname"]: r["indexdef"] for r in rows if r["indexname"] in INDEXES}


def observed(view) -> list[tuple[set[str], int | None, int]]:
    """Before each batch the view applies: (the secondary indexes there, the position the days are
    kept up to (None: none kept), the tracking position)."""
    seen: list = []
    apply = view.apply_batch

    def observing(batch, upstream, *, after):
        days = view.query("SELECT position FROM {dashboard_zone}")
        seen.append((set(indexes(view)), days[0]["position"] if days else None, after))
        return apply(batch, upstream, after=after)

    view.apply_batch = observing
    return seen


def assert_whole(view, projection: ReportProjection) -> None:
    """Every secondary index, as a view opened afresh creates it; the days kept in the zone up to the
    position (so the console reads them), and equal to the cases counted naively."""
    if view.placeholder == "?":
        assert indexes(view) == indexes(open_view(sqlite_env(Path(view.env["SQLITE_DBNAME"] + ".fresh"))))
    else:
        assert set(indexes(view)) == set(INDEXES)
    [kept] = view.query("SELECT zone, position FROM {dashboard_zone}")
    assert kept == {"zone": ZONE, "position": projection.position()}
    assert_days_equal_the_cases(view, ZoneInfo(ZONE))


def batches_of(store, count: int) -> int:
    """A batch size that cuts the store's log into at least `count` batches."""
    return max(1, store.recorder.max_notification_id() // (count + 2))


def test_a_fresh_backlog_is_loaded_in_bulk_to_the_rows_of_evolve(interleaved):  # noqa: F811
    store, env, case_ids = interleaved
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=batches_of(store, 12))
    seen = observed(view)

    assert projection.catch_up() == store.recorder.max_notification_id()

    assert len(seen) >= 12
    # While loading: no day written (they are derived after), and on SQLite no secondary index.
    assert {days for _, days, _ in seen} == {None}
    if view.placeholder == "?":
        assert all(found == set() for found, _, _ in seen)
    else:  # PostgreSQL keeps its indexes (view.defers_indexes)
        assert all(found == set(INDEXES) for found, _, _ in seen)
    assert_whole(view, projection)
    assert_equal_to_the_oracle(view, store, case_ids)


@pytest.mark.parametrize("start", ["one batch applied first", "a backlog of a few batches"])
def test_tables_not_fresh_or_a_short_backlog_keep_their_indexes_and_days(interleaved, start):  # noqa: F811
    store, env, case_ids = interleaved
    view = open_view(env)
    if start == "one batch applied first":
        projection = ReportProjection(store, view, batch_size=batches_of(store, 12))
        assert projection.step() > 0
    else:
        projection = ReportProjection(store, view, batch_size=batches_of(store, 6))
    seen = observed(view)

    projection.catch_up()

    assert len(seen) >= 5
    assert all(found == set(INDEXES) for found, _, _ in seen)
    # The days kept up to the position before every batch after the first (the first derives them
    # on fresh tables).
    assert all(days == after for _, days, after in seen[1:])
    assert_whole(view, projection)
    assert_equal_to_the_oracle(view, store, case_ids)


class Broken(RuntimeError):
    pass


def test_a_bulk_load_that_fails_midway_leaves_the_indexes_and_days_whole(interleaved):  # noqa: F811
    store, env, case_ids = interleaved
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=batches_of(store, 12))
    apply, calls = view.apply_batch, []

    def failing(batch, upstream, *, after):
        calls.append(after)
        if len(calls) == 5:
            raise Broken("the fifth batch fails")
        return apply(batch, upstream, after=after)

    view.apply_batch = failing
    with pytest.raises(Broken):
        projection.catch_up()

    assert 0 < projection.position() < store.recorder.max_notification_id()
    assert projection.position() == calls[-1]  # the four batches before it committed, the fifth did not
    assert_whole(view, projection)

    view.apply_batch = apply
    projection.catch_up()  # no longer fresh: batch by batch, to the oracle's rows
    assert_whole(view, projection)
    assert_equal_to_the_oracle(view, store, case_ids)


def test_the_live_runner_loads_a_fresh_view_in_bulk_and_stops_when_told(interleaved):  # noqa: F811
    store, env, case_ids = interleaved
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=batches_of(store, 12))
    seen, stop = observed(view), threading.Event()
    apply = view.apply_batch

    def stopping(batch, upstream, *, after):
        apply(batch, upstream, after=after)
        if len(seen) == 3:
            stop.set()  # the runner is told to stop in the middle of its bulk load

    view.apply_batch = stopping
    runner = threading.Thread(target=projection.run, args=(stop,), kwargs={"exclusive": False})
    runner.start()
    runner.join(60)
    assert not runner.is_alive()

    assert len(seen) == 3 and all(found == set() or view.placeholder != "?" for found, _, _ in seen)
    assert 0 < projection.position() < store.recorder.max_notification_id()
    assert_whole(view, projection)

    view.apply_batch = apply
    projection.catch_up()
    assert_equal_to_the_oracle(view, store, case_ids)


def test_an_end_of_bulk_load_that_fails_is_made_before_the_next_batch(interleaved):  # noqa: F811
    """The end (indexes, days) itself failing, say on a locked database: the error is raised, and the
    next step makes the end first; the tables are whole after it."""
    store, env, case_ids = interleaved
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=batches_of(store, 12))
    end, ends = view.end_bulk, []

    def failing_once(upstream):
        ends.append(upstream)
        if len(ends) == 1:
            raise Broken("database is locked")
        return end(upstream)

    view.end_bulk = failing_once
    with pytest.raises(Broken):
        projection.catch_up()
    assert projection.position() == store.recorder.max_notification_id()
    if view.placeholder == "?":
        assert indexes(view) == {}  # not made yet

    assert projection.step() == 0  # caught up: nothing to apply, but the end is made first
    assert len(ends) == 2
    assert_whole(view, projection)
    assert_equal_to_the_oracle(view, store, case_ids)
