"""One runner per projection at a time: a lease held for the runner's life.

SQLite: an exclusive `flock` on a lock file beside the reporting database (`reporting.db.lock`);
the kernel lets go when the process dies, however it dies. PostgreSQL: a session-level advisory
lock on a connection of its own; the server lets go when that session ends (process killed, host
gone: TCP keepalives on the session bound how long that takes).

The lease keeps two runners from doing the same work; it is not what makes the projection exactly
once. That is the view's compare-and-set on the tracking position (`ReportView.apply_batch`), which
holds even if a lease is lost or two runners hold one by mistake (a lock file deleted by hand, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import psycopg

POSTGRES = "eventsourcing.postgres"


class ProjectionBusy(RuntimeError):
    """Another runner holds the projection's lease."""


class Lease(Protocol):
    where: str

    def try_acquire(self) -> bool: ...
    def held(self) -> bool: ...
    def holder(self) -> str: ...
    def release(self) -> None: ...


def lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for a PostgreSQL advisory lock, from names."""
    digest = hashlib.blake2b(":".join(("casework", *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def postgres_schema(env: dict[str, str]) -> str:
    return env.get("POSTGRES_SCHEMA", "").strip() or "public"


def postgres_connect(env: dict[str, str], purpose: str) -> psycopg.Connection:
    conn = psycopg.connect(
        host=env.get("POSTGRES_HOST"), port=env.get("POSTGRES_PORT"), dbname=env.get("POSTGRES_DBNAME"),
        user=env.get("POSTGRES_USER"), password=env.get("POSTGRES_PASSWORD") or None, autocommit=True,
        connect_timeout=10, application_name=f"casework {purpose} pid={os.getpid()}@{socket.gethostname()}"[:63])
    # If this host vanishes, the server notices within about a minute and frees the session's locks.
    conn.execute("SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3")
    return conn


def sqlite_path(env: dict[str, str]) -> str | None:
    """The reporting database's file, or None for an in-memory database."""
    name = env.get("SQLITE_DBNAME", "")
    if not name or ":memory:" in name or "mode=memory" in name:
        return None
    if name.startswith("file:"):
        name = name[len("file:"):].split("?", 1)[0]
    return name


def lease_for(env: dict[str, str], name: str = "run") -> Lease:
    """The lease called `name` ("run": the live runner; "rebuild") on the reporting tables of `env`."""
    if env.get("PERSISTENCE_MODULE") == POSTGRES:
        return PostgresLease(env, lock_key("lease", env.get("POSTGRES_DBNAME", ""), postgres_schema(env), name),
                             f'schema "{postgres_schema(env)}" ({name})')
    path = sqlite_path(env)
    if path is None:
        return LocalLease(f"{env.get('SQLITE_DBNAME')}:{name}")
    return FileLease(path + (".lock" if name == "run" else f".{name}.lock"))


@contextlib.contextmanager
def holding(lease: Lease, poll: float = 1.0, on_wait: Callable[[Lease], object] | None = None) -> Iterator[Lease]:
    """Hold `lease` for the block, waiting for it (calling `on_wait(lease)` once) while another has it."""
    waited = False
    while not lease.try_acquire():
        if not waited and on_wait is not None:
            on_wait(lease)
        waited = True
        time.sleep(poll)
    try:
        yield lease
    finally:
        lease.release()


class FileLease:
    """An exclusive flock on a lock file; the file names its holder (pid and host) for operators."""

    def __init__(self, path: str):
        self.path = path
        self.where = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return True

    def held(self) -> bool:
        """Ours, and still the file others lock (not deleted or replaced under us)."""
        if self._fd is None:
            return False
        try:
            return os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def holder(self) -> str:
        try:
            with open(self.path) as f:
                return f.read().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class PostgresLease:
    """A session-level advisory lock on a dedicated connection, held until released or the session ends."""

    def __init__(self, env: dict[str, str], key: int, where: str):
        self.env = env
        self.key = key
        self.where = where
        self._conn: psycopg.Connection | None = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = postgres_connect(self.env, "projection lease")
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s::bigint)", [self.key]).fetchone()[0]
        except BaseException:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            self.release()
            return False

    def holder(self) -> str:
        """The session holding the lock, as pg_stat_activity names it."""
        try:
            with postgres_connect(self.env, "projection lease probe") as conn:
                row = conn.execute(
                    "SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.objsubid = 1",
                    [(self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF]).fetchone()
        except psycopg.Error:
            return "unknown"
        return "unknown" if row is None else f"backend {row[0]} ({row[1]}, {row[2] or 'local'})"

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s::bigint)", [self.key])
            conn.close()


_LOCAL: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class LocalLease:
    """For an in-memory database, which only one process can see anyway."""

    def __init__(self, name: str):
        with _LOCAL_GUARD:
            self._lock = _LOCAL.setdefault(name, threading.Lock())
        self.where = name
        self._held = False

    def try_acquire(self) -> bool:
        if not self._held:
            self._held = self._lock.acquire(blocking=False)
        return self._held

    def held(self) -> bool:
        return self._held

    def holder(self) -> str:
        return "another thread of this process"

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()


@contextlib.contextmanager
def postgres_ddl_lock(env: dict[str, str]) -> Iterator[None]:
    """Serialize schema changes to the reporting tables across processes (CREATE ... IF NOT EXISTS
    races in PostgreSQL when two processes start together), on a short-lived connection of its own."""
    key = lock_key("ddl", env.get("POSTGRES_DBNAME", ""), postgres_schema(env))
    with postgres_connect(env, "projection ddl") as conn:
        conn.execute("SELECT pg_advisory_lock(%s::bigint)", [key])
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s::bigint)", [key])
