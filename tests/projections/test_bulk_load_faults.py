"""The bulk load (ReportProjection.bulk) when its own transactions fail, and a runner taking over from
one killed in its load, on SQLite (from a hostile review: each failed on the first version).

What must hold: the live runner (`run`) survives a failing step (a locked database) and goes on; if
what failed is the load's start or end, it goes on with the indexes and the days whole, not without
them for the rest of its life; a runner starting or taking over makes whole what a runner killed in
its load left.

Faults are real ones: another connection holds the reporting database's write lock for longer than
the view's busy timeout (SQLITE_LOCK_TIMEOUT, 1 s here; 30 s in casework.config.sqlite_env).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from casework.config import sqlite_env
from casework.history import write_history
from casework.keyring import Keyring
from domain.model import Actor
from domain.store import CaseStore, Forgotten
from projections import dashboard
from projections.runner import ReportProjection, open_view
from projections.schema import INDEXES
from tests.projections.history import write_history as write_engine_history
from tests.projections.test_batched_rows import ZONE, interleave, sqlite_store, write_reply_cycles
from tests.projections.test_bulk_load import assert_whole, batches_of, indexes


def _setup(tmp_path: Path):
    store = sqlite_store(tmp_path / "events.db")
    scratch = sqlite_store(tmp_path / "scratch.db")
    case_ids = write_engine_history(scratch, cases=40, seed=11) + write_reply_cycles(scratch, cases=4)
    interleave(scratch, store, case_ids)
    env = {**sqlite_env(tmp_path / "reporting.db"), "SQLITE_LOCK_TIMEOUT": "1", dashboard.ZONE_KEY: ZONE}
    return store, env, case_ids


class Locker:
    """Another writer of the reporting database: holds its write lock until released."""

    def __init__(self, path: str):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def hold(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")


def _wait(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_live_runner_whose_begin_bulk_meets_a_locked_database_keeps_the_days_afterwards(tmp_path):
    """The load's start (its DROP INDEX transaction) fails on a locked database: the view must not be
    left in bulk mode (the days skipped in every batch for the life of the process)."""
    store, env, _ = _setup(tmp_path)
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=batches_of(store, 12))
    assert projection.fresh()
    locker = Locker(env["SQLITE_DBNAME"])
    locker.hold()
    stop = threading.Event()
    runner = threading.Thread(target=projection.run, args=(stop,), kwargs={"exclusive": False, "idle_seconds": 0.05})
    runner.start()
    try:
        _wait(lambda: projection.failed >= 1)  # begin_bulk's transaction timed out on the lock
        locker.release()
        _wait(lambda: projection.position() == store.recorder.max_notification_id())
        time.sleep(0.5)
    finally:
        stop.set()
        runner.join(30)
    assert set(indexes(view)) == set(INDEXES)  # holds: the DROP INDEX rolled back
    kept = view.query("SELECT zone, position FROM {dashboard_zone}")
    assert kept == [{"zone": ZONE, "position": projection.position()}], \
        f"days not kept after the runner caught up ({kept}); view.bulk = {view.bulk}"
    assert_whole(view, projection)


def test_live_runner_whose_end_bulk_meets_a_locked_database_gets_its_indexes_back(tmp_path):
    """The load's end (the indexes and the days, one write transaction) fails on a locked database:
    the runner makes it again before its next step, not following the log without the indexes."""
    store, env, _ = _setup(tmp_path)
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=batches_of(store, 12))
    head = store.recorder.max_notification_id()
    locker, held = Locker(env["SQLITE_DBNAME"]), []
    apply = view.apply_batch

    def then_lock(batch, upstream, *, after):
        apply(batch, upstream, after=after)
        if batch[-1][1] == head and not held:  # the load's last batch committed: another writer comes
            locker.hold()
            held.append(True)
            threading.Timer(2.5, locker.release).start()

    view.apply_batch = then_lock
    stop = threading.Event()
    runner = threading.Thread(target=projection.run, args=(stop,), kwargs={"exclusive": False, "idle_seconds": 0.05})
    runner.start()
    try:
        _wait(lambda: projection.failed >= 1)  # end_bulk timed out on the lock
        time.sleep(4.0)  # the lock is long gone; the runner goes on following the log
        assert runner.is_alive()
        found = set(indexes(view))
    finally:
        stop.set()
        runner.join(30)
    assert projection.position() == head
    assert found == set(INDEXES), f"the runner went on without {sorted(set(INDEXES) - found)}"


def test_a_forgetting_inside_a_bulk_load_erases_the_subjects(tmp_path):
    """Held check: a CustomerForgotten applied while subjects_customer is dropped still deletes the
    customer's sealed subjects (counted from the raw rows, not through the projection's queries)."""
    keyring = Keyring.sqlite(tmp_path / "keyring.db", [os.urandom(32)])
    store = CaseStore(env=sqlite_env(tmp_path / "events.db"), sealer=keyring)
    ids = write_history(store, cases=60)
    result = keyring.forget("c3", "sam")
    store.record_forgotten(Forgotten(customer_id="c3", actor=Actor(id="sam", role="supervisor"),
                                     at=datetime.now(UTC), key_ids=result.key_ids, case_ids=result.case_ids))
    ids2 = write_history(store, cases=20, seed=5)  # more after the forgetting, so it lands mid-load
    view = open_view(sqlite_env(tmp_path / "r.db"))
    projection = ReportProjection(store, view, batch_size=batches_of(store, 12))
    assert projection.fresh()
    projection.catch_up()
    raw = sqlite3.connect(tmp_path / "r.db")
    left = {r[0] for r in raw.execute("SELECT customer_id FROM case_subjects")}
    cases = {r[0]: r[1] for r in raw.execute("SELECT case_id, customer_id FROM cases")}
    assert "c3" in {cases[cid] for cid in ids}
    kept = {r[0] for r in raw.execute("SELECT case_id FROM case_subjects")}
    assert {cid for cid in ids if cases[cid] == "c3"} & kept == set()
    assert {cid for cid in ids if cases[cid] != "c3"} <= kept
    assert ids2 and not set(ids2) & set(ids)


def test_a_standby_runner_taking_over_from_one_killed_in_its_bulk_load_has_the_indexes(tmp_path):
    """A runner (`casework projections run`) killed in its bulk load leaves the indexes dropped. A
    runner on standby opened the tables before the load began (no opening to come): taking the lease
    over, it makes them first."""
    import signal
    import subprocess
    import sys

    from casework.config import Settings, reporting_env
    from casework.stores import open_case_store
    from tests.projections.history import write_history as write_engine_history

    store = open_case_store(Settings(data_dir=tmp_path))
    write_engine_history(store, cases=500, seed=3)
    env = {**os.environ, "CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_LOG_FORMAT": "json"}
    view = open_view(reporting_env(Settings(data_dir=tmp_path)))  # the standby's, opened before the load
    standby = ReportProjection(store, view, batch_size=7)
    head = store.recorder.max_notification_id()
    assert set(indexes(view)) == set(INDEXES)

    casework = str(Path(sys.executable).parent / "casework")
    first = subprocess.Popen([casework, "projections", "run", "--batch-size", "7"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    runner = threading.Thread(target=standby.run, args=(stop,), kwargs={"standby_seconds": 0.1, "idle_seconds": 0.05})
    try:
        _wait(lambda: standby.position() > 0, 60)  # the first runner is in its bulk load
        runner.start()  # on standby: the first holds the lease
        time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert 0 < standby.position() < head, "the first runner finished its load before it was killed"
        assert set(indexes(view)) == set(), "killed in its bulk load, without its indexes"
        _wait(lambda: standby.position() == head, 120)  # the standby took over and caught up
        time.sleep(0.5)
        found = set(indexes(view))
    finally:
        stop.set()
        if runner.is_alive():
            runner.join(30)
        if first.poll() is None:
            first.kill()
    assert found == set(INDEXES), f"the standby caught up without {len(set(INDEXES) - found)} indexes"
