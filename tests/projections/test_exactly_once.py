"""Exactly once with several writers: runners in other OS processes racing an in-process one (with and
without the lease), and a rebuild swapped in while a live runner applies and events keep coming.
Every time the reporting tables must equal, row for row, a projection built alone from scratch, and
agree with what was appended (cases opened, notes added, events in the log)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from casework.config import sqlite_env
from casework.history import write_history
from domain.store import CaseStore
from projections.lease import ProjectionBusy, lease_for
from projections.runner import REBUILD_PREFIX, ReportProjection, open_view, rebuild
from projections.view import StalePosition
from tests.pg import create_database
from tests.projections.load import (
    Appended,
    Load,
    append_notes,
    assert_counts_match,
    assert_equal_to_a_fresh_rebuild,
    head,
    table_rows,
    wait_caught_up,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Backend:
    kind: str
    store_env: dict[str, str]
    reporting_env: dict[str, str]
    fresh_env: dict[str, str]  # where a projection built alone from scratch goes, for comparison

    def store(self) -> CaseStore:
        return CaseStore(env=self.store_env)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", sqlite_env(tmp_path / "events.db"), sqlite_env(tmp_path / "reporting.db"),
                       sqlite_env(tmp_path / "fresh.db"))
    server = request.getfixturevalue("postgres_server")
    name = f"once_{uuid.uuid4().hex[:10]}"
    create_database(server, name)
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": name,
           "POSTGRES_HOST": server["host"], "POSTGRES_PORT": server["port"], "POSTGRES_USER": server["user"],
           "POSTGRES_PASSWORD": server["password"]}
    return Backend("postgres", env, {**env, "POSTGRES_SCHEMA": "reporting"}, {**env, "POSTGRES_SCHEMA": "fresh"})


class RunnerProcess:
    """tests/projections/runner_process.py in an OS process of its own; its log is a file."""

    def __init__(self, backend: Backend, tmp_path: Path, name: str, batch_size: int, lease: bool):
        self.log = tmp_path / f"{name}.log"
        self.stats = tmp_path / f"{name}.json"
        cmd = [sys.executable, "-m", "tests.projections.runner_process",
               "--store-env", json.dumps(backend.store_env), "--reporting-env", json.dumps(backend.reporting_env),
               "--batch-size", str(batch_size), "--stats", str(self.stats), *([] if lease else ["--no-lease"])]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)

    def logged(self, event: str) -> bool:
        return f'"event": "{event}"' in self.log.read_text()

    def wait_logged(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.logged(event):
            assert self.proc.poll() is None, f"runner exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no {event} after {timeout} s: {self.log.read_text()[-2000:]}"
            time.sleep(0.05)

    def terminate(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(30) == 0, self.log.read_text()[-2000:]
        return json.loads(self.stats.read_text())

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)


class RunnerThread:
    def __init__(self, backend: Backend, batch_size: int, exclusive: bool):
        self.projection = ReportProjection(backend.store(), open_view(backend.reporting_env), batch_size)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.projection.run, daemon=True, args=(self.stop,),
                                       kwargs={"idle_seconds": 0.02, "exclusive": exclusive, "standby_seconds": 0.1})
        self.thread.start()

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def _cleanup(runners: list[RunnerProcess]) -> None:
    for runner in runners:
        if runner.proc.poll() is None:
            runner.kill()


# (a) several runners following one store while it grows


def test_runners_racing_without_the_lease_apply_every_event_once(backend, tmp_path):
    """The compare-and-set alone: three runners in two processes and this one, no lease, small
    batches that overlap all the time; the refused ones are read again."""
    store = backend.store()
    view = open_view(backend.reporting_env)  # the tables exist before the runners start
    load = Load(store, chunks=15, pause=0.05, cases=2)
    others = [RunnerProcess(backend, tmp_path, f"runner{i}", batch_size, lease=False)
              for i, batch_size in enumerate((5, 9))]
    try:
        local = RunnerThread(backend, batch_size=7, exclusive=False)
        for runner in others:
            runner.wait_logged("projection_started")
        seeded = write_history(store, cases=12, seed=1)  # a backlog they all go for at once
        load.start()
        appended = load.finish()
        wait_caught_up(local.projection)
        local.finish()
        stats = [runner.terminate() for runner in others]
    finally:
        _cleanup(others)

    assert local.projection.failed == 0 and all(s["failed"] == 0 for s in stats)  # lost races are no errors
    assert local.projection.refused + sum(s["refused"] for s in stats) > 0, "the runners never raced"
    assert local.projection.lag().events_behind == 0
    assert_equal_to_a_fresh_rebuild(store, view, backend.fresh_env)
    assert_counts_match(view, store, Appended(seeded + appended.case_ids, appended.notes))


def test_a_second_runner_stands_by_and_takes_over_when_the_holder_stops_or_dies(backend, tmp_path):
    """The lease: one runner applies, two others (OS processes) wait on standby and say so; the
    in-process holder stops, a standby takes over; that one is killed (SIGKILL), the last takes over."""
    store = backend.store()
    seeded = write_history(store, cases=12, seed=2)
    view = open_view(backend.reporting_env)
    local = RunnerThread(backend, batch_size=20, exclusive=True)
    while local.projection.position() == 0:
        time.sleep(0.02)
    standbys = [RunnerProcess(backend, tmp_path, f"standby{i}", batch_size, lease=True)
                for i, batch_size in enumerate((11, 13))]
    load = Load(store, pause=0.05, cases=2)
    try:
        for runner in standbys:
            runner.wait_logged("projection_standby")
        assert all(not r.logged("projection_lease_acquired") for r in standbys)
        load.start()
        time.sleep(0.5)
        local.finish()  # lets the lease go
        holder = _wait_for_holder(standbys)
        time.sleep(0.5)
        holder.kill()
        survivor = next(r for r in standbys if r is not holder)
        survivor.wait_logged("projection_lease_acquired")
        time.sleep(0.3)
        assert load.is_alive()  # all this happened under load
        appended = load.finish()
        wait_caught_up(local.projection)
        stats = survivor.terminate()
    finally:
        _cleanup(standbys)

    assert stats["refused"] == stats["failed"] == 0  # with the lease nobody raced
    assert local.projection.lag().events_behind == 0
    assert_equal_to_a_fresh_rebuild(store, view, backend.fresh_env)
    assert_counts_match(view, store, Appended(seeded + appended.case_ids, appended.notes))


def _wait_for_holder(runners: list[RunnerProcess], timeout: float = 30) -> RunnerProcess:
    deadline = time.monotonic() + timeout
    while True:
        holders = [r for r in runners if r.logged("projection_lease_acquired")]
        if holders:
            assert len(holders) == 1, "two runners hold the lease"
            return holders[0]
        assert time.monotonic() < deadline, "no standby took the lease over"
        time.sleep(0.05)


# (b) rebuild and swap while a live runner applies and events keep coming


def test_rebuilds_swapped_in_under_load_lose_and_double_nothing(backend, tmp_path):
    """Two rebuilds, each swapped in while the live runner applies small batches and events are
    appended throughout (a background load, and appends made while the rebuild is seen running)."""
    store = backend.store()
    seeded = write_history(store, cases=10, seed=3)
    view = open_view(backend.reporting_env)
    live = RunnerThread(backend, batch_size=10, exclusive=True)
    load = Load(store, pause=0.2, cases=1)  # well within what one runner applies, on a busy machine too
    extra, writer = Appended(), backend.store()
    appended_during = 0
    load.start()
    try:
        for round_ in range(2):
            time.sleep(0.2)
            rebuilding = Rebuild(backend)
            for _ in range(3):
                if not rebuilding.is_alive():
                    break
                append_notes(writer, cases=1, notes_per_case=2, seed=300 + len(extra.case_ids), into=extra)
                appended_during += rebuilding.is_alive()  # that append committed while it ran
                time.sleep(0.05)
            rebuilding.finish()
        appended = load.finish()
        swapped = head(store)
        append_notes(writer, cases=2, notes_per_case=3, seed=31, into=extra)  # for the live runner alone
        wait_caught_up(live.projection)
    finally:
        load.stop.set()
        live.finish()

    assert appended_during > 0
    assert live.projection.failed == 0  # a batch caught by a swap is refused and read again, no error
    assert live.projection.position() > swapped  # the live runner carried on after the last swap
    lag = live.projection.lag()
    assert lag.events_behind == 0 and lag.position == lag.head == head(store)
    assert_equal_to_a_fresh_rebuild(store, view, backend.fresh_env)
    assert_counts_match(view, store, Appended(seeded + appended.case_ids + extra.case_ids,
                                              appended.notes + extra.notes))


class Rebuild(threading.Thread):
    def __init__(self, backend: Backend):
        super().__init__(name="rebuild", daemon=True)
        self.backend, self.error = backend, None
        self.start()

    def run(self) -> None:
        try:
            rebuild(self.backend.store(), self.backend.reporting_env, batch_size=50)
        except BaseException as err:  # noqa: BLE001 - raised by finish()
            self.error = err

    def finish(self) -> None:
        self.join(60)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error


def test_a_live_batch_in_flight_across_a_swap_is_refused_and_read_again(backend):
    store = backend.store()
    ids = write_history(store, cases=10, seed=4)
    view = open_view(backend.reporting_env)
    projection = ReportProjection(store, view, batch_size=25)
    projection.step()
    after = projection.position()
    in_flight = projection._next(after, 25)  # read, not yet applied
    more = Appended()
    append_notes(store, cases=2, notes_per_case=4, seed=41, into=more)

    rebuild(store, backend.reporting_env, batch_size=30)
    before = table_rows(view)
    with pytest.raises(StalePosition):
        view.apply_batch(in_flight, projection.upstream, after=after)
    assert table_rows(view) == before
    assert projection.lag().events_behind == 0  # the swap took the position to the head, with the rows

    projection.catch_up()  # the runner reads again from the new position: nothing left
    assert_equal_to_a_fresh_rebuild(store, view, backend.fresh_env)
    assert_counts_match(view, store, Appended(ids + more.case_ids, more.notes))


def test_the_swap_takes_in_events_appended_after_the_rebuild_caught_up(backend):
    store = backend.store()
    ids = write_history(store, cases=10, seed=5)
    view = open_view(backend.reporting_env)
    live = ReportProjection(store, view, batch_size=40)
    live.catch_up()
    fresh = open_view(backend.reporting_env, prefix=REBUILD_PREFIX)
    name = f"{store.name}:rebuild"
    fresh.drop_report_tables(name)
    fresh.create_report_tables()
    building = ReportProjection(store, fresh, upstream=name)
    building.catch_up()
    more = Appended()
    append_notes(store, cases=3, notes_per_case=2, seed=51, into=more)
    live.step()  # the live runner applied part of them meanwhile

    late, position = fresh.swap_in(name, store.name, building._next, building.head)

    assert late > 0 and position == head(store)
    assert live.lag().events_behind == 0
    assert_equal_to_a_fresh_rebuild(store, view, backend.fresh_env)
    assert_counts_match(view, store, Appended(ids + more.case_ids, more.notes))


# (c) the compare-and-set itself


def test_a_batch_read_at_a_stale_position_is_refused_and_changes_nothing(backend):
    store = backend.store()
    write_history(store, cases=6, seed=6)
    view = open_view(backend.reporting_env)
    first, second = (ReportProjection(store, view, batch_size=10) for _ in range(2))
    batch_a, batch_b = first._next(0, 10), second._next(0, 10)  # both read after position 0
    view.apply_batch(batch_a, first.upstream, after=0)
    before, position = table_rows(view), first.position()

    with pytest.raises(StalePosition) as refused:
        view.apply_batch(batch_b, second.upstream, after=0)
    assert (refused.value.after, refused.value.position) == (0, position)
    assert table_rows(view) == before and first.position() == position

    ahead = first._next(position + 3, 10)  # a batch that would skip three events
    with pytest.raises(StalePosition):
        view.apply_batch(ahead, first.upstream, after=position + 3)
    assert table_rows(view) == before and first.position() == position

    assert second.step() == 10 and second.refused == 0  # read again from the position: applies


def test_only_one_runner_holds_the_lease(backend):
    view = open_view(backend.reporting_env)
    one, two = lease_for(backend.reporting_env), lease_for(backend.reporting_env)
    assert one.try_acquire() and one.held()
    try:
        assert not two.try_acquire()
        assert (f"pid {os.getpid()}" if backend.kind == "sqlite" else f"pid={os.getpid()}") in two.holder()
        stop = threading.Event()
        with pytest.raises(ProjectionBusy, match="another runner holds the reporting projection"):
            ReportProjection(backend.store(), view).run(stop, standby=False)
        rebuilding = lease_for(backend.reporting_env, "rebuild")
        assert rebuilding.try_acquire()  # a rebuild is not a runner
        rebuilding.release()
    finally:
        one.release()
    assert two.try_acquire()
    two.release()
