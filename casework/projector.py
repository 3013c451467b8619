"""The reporting projection in a process of its own beside the worker: what `casework run` starts by
default (`CASEWORK_PROJECTION_PROCESS`, casework/config.py).

In a thread of the worker the projection competed with the workflows for one interpreter (the GIL):
commands ran at 0.47 x a bare update with it and 0.60 x without it (bench/README.md, "Commands").
The child runs the same `ReportProjection.run` as the thread did, with its lease
(projections/lease.py), so one runner at a time still holds, and the view's compare-and-set keeps
the projection exactly once whatever happens to either process. The child stops when the worker
stops it, and also when the worker dies however it dies (it watches its parent), so no orphan keeps
the lease; the worker starts a new child if one exits on its own.

The child is spawned, a fresh interpreter that imports the starting script as its main module: a
script that runs the worker does so under `if __name__ == "__main__":` (worker.py and the `casework`
command do), or each child would start the engine again instead of the projection.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import signal
import threading
from collections.abc import AsyncIterator, Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from casework.config import Settings
    from domain.store import CaseStore
    from projections.view import ReportView

log = structlog.get_logger("casework.projector")

# A fresh interpreter (not a fork of the worker's, with its threads, event loop and open connections).
_SPAWN = multiprocessing.get_context("spawn")
RESTART_SECONDS = (1, 2, 5, 10, 30)  # a child that keeps dying is started again less and less often


def open_for_settings(settings: Settings) -> tuple[CaseStore, ReportView]:
    """The engine's event store (with its keyring) and reporting tables, as the worker opens them."""
    from casework.config import reporting_env
    from casework.stores import open_case_store
    from projections.runner import open_view

    return open_case_store(settings), open_view(reporting_env(settings))


def open_envs(store_env: dict[str, str], reporting_env: dict[str, str]) -> tuple[CaseStore, ReportView]:
    """A store and reporting tables named by their eventsourcing environments, without a keyring (the
    benchmark's and the tests' files)."""
    from domain.store import CaseStore
    from projections.runner import open_view

    return CaseStore(env=store_env), open_view(reporting_env)


def _child(open_parts: Callable[[], tuple[CaseStore, ReportView]], stop: Connection,
           log_format: str, log_level: str) -> None:
    from casework.logs import configure_logging
    from projections.runner import ReportProjection, set_aside_startup_heap

    # Ctrl-C in a terminal reaches the whole process group: the worker stops the child itself, after
    # its own shutdown, instead of the child dying mid-batch with a traceback on the user's screen.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(log_format, log_level)
    stopping = threading.Event()
    parent = multiprocessing.parent_process()

    def watch() -> None:  # stop when asked, or when the worker is gone (its sentinel closes)
        while not stop.poll(0.5):
            if parent is not None and not parent.is_alive():
                log.warning("projection_parent_gone", message="the worker exited; the projection stops")
                break
        stopping.set()

    threading.Thread(target=watch, name="projection-watch", daemon=True).start()
    store, view = open_parts()
    set_aside_startup_heap()
    ReportProjection(store, view).run(stopping)


class ProjectorProcess:
    """One projection child at a time, started again when it exits unasked."""

    def __init__(self, open_parts: Callable[[], tuple[CaseStore, ReportView]], log_format: str = "auto",
                 log_level: str = "info") -> None:
        self.open_parts, self.log_format, self.log_level = open_parts, log_format, log_level
        # The stop signal is a pipe the child polls, not a multiprocessing Event: a child killed while
        # waiting on an Event (SIGTERM to the whole group from a service manager, the OOM killer)
        # leaves its Condition counting a sleeper that never wakes, and Event.set then blocks the
        # worker's shutdown for good. A message in a pipe needs nobody to read it.
        self._stop_read, self._stop_write = _SPAWN.Pipe(duplex=False)
        self.stopping = False
        self.process: multiprocessing.process.BaseProcess | None = None
        self.restarts = 0

    def start(self) -> None:
        self.process = _SPAWN.Process(target=_child, name="casework-projection", daemon=True,
                                      args=(self.open_parts, self._stop_read, self.log_format, self.log_level))
        self.process.start()
        log.info("projection_process_started", pid=self.process.pid)

    async def supervise(self) -> None:
        """Start the child again whenever it exits while the worker runs."""
        while True:
            await asyncio.sleep(0.5)
            if self.process is not None and not self.process.is_alive() and not self.stopping:
                wait = RESTART_SECONDS[min(self.restarts, len(RESTART_SECONDS) - 1)]
                log.warning("projection_process_exited", pid=self.process.pid, exitcode=self.process.exitcode,
                            restart_in_seconds=wait)
                self.restarts += 1
                await asyncio.sleep(wait)
                if not self.stopping:
                    self.start()

    def stop(self, timeout: float = 10) -> None:
        if not self.stopping:
            self.stopping = True
            self._stop_write.send(True)
        if self.process is None:
            return
        self.process.join(timeout)
        if self.process.is_alive():  # stuck in a batch: the compare-and-set keeps a cut batch harmless
            log.warning("projection_process_killed", pid=self.process.pid, after_seconds=timeout)
            self.process.terminate()
            self.process.join(5)


@contextlib.asynccontextmanager
async def projection_process(open_parts: Callable[[], tuple[CaseStore, ReportView]], log_format: str = "auto",
                             log_level: str = "info") -> AsyncIterator[ProjectorProcess]:
    """The projection child for the life of the block."""
    child = ProjectorProcess(open_parts, log_format, log_level)
    child.start()
    watcher = asyncio.create_task(child.supervise())
    try:
        yield child
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await asyncio.to_thread(child.stop)
