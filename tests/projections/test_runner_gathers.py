"""The live runner under a stream of events: once a batch comes back short (it took all there was), it
waits `idle_seconds` before reading again, so the events appended meanwhile make one batch, not a
transaction each. A batch that comes back full is followed at once (catching up), and nothing is
lost or applied twice either way."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from casework.config import sqlite_env
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view
from tests.projections.load import Load, assert_counts_match, head, wait_caught_up


class CountingProjection(ReportProjection):
    """Counts the batches it applies and the events in them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def step(self) -> int:
        applied = super().step()
        if applied:
            self.batches.append(applied)
        return applied


def test_a_stream_of_events_is_gathered_into_a_batch_per_idle_wait(tmp_path):
    store = CaseStore(env=sqlite_env(tmp_path / "events.db"))
    idle = 0.4
    # Batches larger than the stream can fill in a wait: every batch is short, so each is followed
    # by the wait (a full one is followed at once: the test below).
    projection = CountingProjection(store, open_view(sqlite_env(tmp_path / "reporting.db")), batch_size=100_000)
    stop = threading.Event()
    runner = threading.Thread(target=projection.run, args=(stop,), kwargs={"idle_seconds": idle}, daemon=True)
    runner.start()
    load = Load(store, pause=0.0, cases=2)  # appends without a pause: a new event every few ms
    started = time.monotonic()
    load.start()
    time.sleep(3.0)
    appended = load.finish()
    streamed = time.monotonic() - started
    wait_caught_up(projection)
    stop.set()
    runner.join(30)
    assert not runner.is_alive()

    events = head(store)
    assert sum(projection.batches) == events  # every event applied once
    assert_counts_match(projection.view, store, appended)
    # Every short batch is followed by a wait of `idle` seconds: at most one per wait while the
    # stream lasted, and the last one after it. Without the wait the runner reads again at once and
    # applies the few events appended during its last batch: a batch every few milliseconds.
    assert events > 10 * (streamed / idle + 2), f"the load appended too little to tell ({events} events)"
    assert max(projection.batches) < 100_000
    assert len(projection.batches) <= streamed / idle + 2, (
        f"{len(projection.batches)} batches for {events} events in {streamed:.1f} s: {projection.batches[:40]}")


def test_a_backlog_is_read_in_full_batches_without_waiting(tmp_path):
    """Full batches follow each other at once: a backlog of N events takes N / batch_size reads, not
    one idle wait per batch."""
    store = CaseStore(env=sqlite_env(tmp_path / "events.db"))
    load = Load(store, chunks=6, pause=0.0, cases=3)
    load.start()
    load.finish()
    events = head(store)
    assert events > 100
    projection = CountingProjection(store, open_view(sqlite_env(tmp_path / "reporting.db")), batch_size=20)
    stop = threading.Event()
    runner = threading.Thread(target=projection.run, args=(stop,), kwargs={"idle_seconds": 30.0}, daemon=True)
    runner.start()
    wait_caught_up(projection, timeout=25)  # one idle wait per batch would take hours
    stop.set()
    runner.join(40)
    assert projection.batches[:-1] == [20] * (len(projection.batches) - 1)
    assert sum(projection.batches) == events


def test_a_batch_size_below_one_is_refused(tmp_path):
    """A batch of none is never short, so the runner would never wait between reads (a hot loop)."""
    store = CaseStore(env=sqlite_env(tmp_path / "events.db"))
    view = open_view(sqlite_env(tmp_path / "reporting.db"))
    for size in (0, -1):
        with pytest.raises(ValueError, match="batch_size must be at least 1"):
            ReportProjection(store, view, batch_size=size)


def test_the_startup_heap_is_set_aside_from_the_collector():
    """What a projecting process holds after starting up (casework's imports) is frozen: the full
    collections of a long catch-up do not walk it again and again."""
    script = ("import gc, casework.cli\n"
              "from projections.runner import set_aside_startup_heap\n"
              "before = len(gc.get_objects())\n"
              "set_aside_startup_heap()\n"
              "print(before, gc.get_freeze_count(), len(gc.get_objects()), gc.isenabled())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    before, frozen, left, enabled = int(out[0]), int(out[1]), int(out[2]), out[3]
    assert before > 20_000  # the imports: tens of thousands of tracked objects
    assert frozen >= 0.9 * before and left < 1_000
    assert enabled == "True"  # the collector still runs, for what comes after
