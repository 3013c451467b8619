"""The reporting projection in a process of its own (casework/projector.py, what `casework run` starts by
default): it applies what the store holds, stops when the worker stops it, and stops by itself when
the worker is SIGKILLed, letting go of the projection's lease; a child that dies is started again."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from casework.config import sqlite_env
from casework.projector import open_envs, projection_process
from domain.lifecycle import decide
from domain.store import CaseStore
from projections.lease import lease_for
from projections.runner import ReportProjection, open_view
from tests.factory import open_case

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.split()[1:2] == ["Z"] for line in status if line.startswith("State:"))
    except FileNotFoundError:
        return True


def _wait(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.1)


def _store_with_cases(tmp: Path, n: int) -> CaseStore:
    store = CaseStore(env=sqlite_env(tmp / "events.db"))
    for _ in range(n):
        cmd = open_case(case_id=str(uuid.uuid4()))
        store.append(cmd.command_id, decide(None, cmd, NOW))
    return store


async def test_the_child_applies_the_store_and_stops_with_the_worker(tmp_path):
    store = _store_with_cases(tmp_path, 3)
    reporting = sqlite_env(tmp_path / "reporting.db")
    watcher = ReportProjection(store, open_view(reporting))
    async with projection_process(functools.partial(open_envs, sqlite_env(tmp_path / "events.db"), reporting),
                                  "console", "warning") as child:
        pid = child.process.pid
        assert pid != os.getpid()
        _wait(lambda: watcher.position() == 3)
        assert watcher.view.query("SELECT COUNT(*) AS n FROM {cases}")[0]["n"] == 3
        assert _holds(reporting)  # the child holds the lease
        os.kill(pid, signal.SIGINT)  # Ctrl-C reaches the whole group: the worker, not the child, stops it
        await asyncio.sleep(1)
        assert child.process.is_alive() and child.restarts == 0
    assert _gone(pid) and child.process.exitcode == 0  # stopped when asked, not killed
    assert not _holds(reporting)


async def test_a_child_that_dies_is_started_again(tmp_path):
    _store_with_cases(tmp_path, 1)
    reporting = sqlite_env(tmp_path / "reporting.db")
    async with projection_process(functools.partial(open_envs, sqlite_env(tmp_path / "events.db"), reporting),
                                  "console", "warning") as child:
        first = child.process.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while child.process.pid == first:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert child.restarts == 1 and child.process.is_alive()


def test_the_worker_stops_though_its_child_was_killed_while_waiting(tmp_path):
    """A service manager's SIGTERM reaches the whole group, the child too, while it waits for the
    stop signal: the worker's stop must still return (a multiprocessing Event's set() blocked for
    good on the dead waiter, and `casework run` never exited)."""
    import threading

    from casework.projector import ProjectorProcess

    _store_with_cases(tmp_path, 1)
    reporting = sqlite_env(tmp_path / "reporting.db")
    child = ProjectorProcess(functools.partial(open_envs, sqlite_env(tmp_path / "events.db"), reporting),
                             "console", "warning")
    child.start()  # not supervised: no new child is started when this one dies
    _wait(lambda: _holds(reporting))  # the child runs and polls for the stop signal
    pid = child.process.pid
    os.kill(pid, signal.SIGTERM)
    _wait(lambda: _gone(pid))
    stopper = threading.Thread(target=child.stop, daemon=True)
    stopper.start()
    stopper.join(60)  # a hang, not a speed: stop() takes well under a second when it works
    assert not stopper.is_alive(), "the worker's stop blocked on the killed child"


def test_the_child_stops_when_the_worker_is_killed(tmp_path):
    _store_with_cases(tmp_path, 1)
    reporting = sqlite_env(tmp_path / "reporting.db")
    # A stand-in worker: starts the child the way the worker does, says its pid, then waits to be killed.
    script = textwrap.dedent(f"""
        import functools, sys, time
        from casework.projector import ProjectorProcess, open_envs
        if __name__ == "__main__":
            child = ProjectorProcess(functools.partial(open_envs, {sqlite_env(tmp_path / "events.db")!r},
                                                       {reporting!r}), "console", "warning")
            child.start()
            print("child", child.process.pid, flush=True)
            time.sleep(600)
    """)
    (tmp_path / "stand_in.py").write_text(script)
    worker = subprocess.Popen([sys.executable, str(tmp_path / "stand_in.py")], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        child = int(next(line for line in worker.stdout if line.startswith("child")).split()[1])
        _wait(lambda: _holds(reporting))  # the child took the lease
        worker.kill()
        worker.wait()
        _wait(lambda: _gone(child), 30)
        assert not _holds(reporting)
    finally:
        if worker.poll() is None:
            worker.kill()


def _holds(reporting: dict[str, str]) -> bool:
    """Whether someone else holds the projection's lease (tried, and let go at once when we got it)."""
    lease = lease_for(reporting, "run")
    if lease.try_acquire():
        lease.release()
        return False
    return True

