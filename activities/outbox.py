"""The notification outbox: a table filled from the event store the way a projection is, and the
follower that fills it.

The follower reads the store's notification log after its tracking position, copies each notified
event into `outbox` (its body, its idempotency key, when it is due) and moves the position, in one
transaction; a batch not read right after the current position is refused (compare-and-set), so two
followers can never copy an event twice or skip one. Rows are never deleted: a delivered row keeps
`delivered_at`, an undeliverable one `dead_at`. SQLite: a file beside the event store; PostgreSQL: a
schema of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from eventsourcing.utils import Environment

from activities.notify import NOTIFIED, Notification, notification_for
from domain.events import EVENT_ADAPTER, PERSONAL_PATHS, Event
from domain.model import CaseState
from domain.personal import FORGOTTEN, map_personal
from domain.store import CaseStore, Sealer, is_case_event, owner_of, stream_id

log = structlog.get_logger("casework.notify")
OUTBOX_NAME = "notifications"

COLUMNS = ("idempotency_key", "notification_id", "case_id", "event_type", "body", "created_at",
           "attempts", "first_attempt_at", "next_attempt_at", "delivered_at", "delivered_to", "dead_at",
           "last_error")


def _aad(key: str, path: str) -> str:
    return f"outbox:{key}|{path}"


def sealed_body(note: Notification, customer_id: str, sealer: Sealer | None) -> dict[str, Any]:
    """The body to store: the case's subject, the event's personal fields and the summary that may
    quote them, sealed with the customer's key, so the outbox never holds them and forgetting reaches
    it too."""
    body = note.body()
    if sealer is None:
        return body
    key, paths = note.notification_id, PERSONAL_PATHS.get(note.event.type, ())

    def seal(path: str, text: str) -> str:
        return sealer.seal(customer_id, _aad(key, path), text)

    body["case"]["subject"] = seal("case.subject", body["case"]["subject"])
    body["event"]["summary"] = seal("summary", body["event"]["summary"])
    body["event"]["details"] = map_personal(body["event"]["details"], paths, seal)
    return body


def opened_body(body: dict[str, Any], sealer: Sealer | None) -> dict[str, Any]:
    """The body to deliver: sealed fields opened, or "[forgotten]" once the customer's key is gone."""
    event = body.get("event")
    if sealer is None or not isinstance(event, dict) or not sealer.is_sealed(event.get("summary", "")):
        return body  # unsealed (no keyring), or a row of an older body schema
    key = body["notification_id"]

    def open_(path: str, token: str) -> str:
        if not sealer.is_sealed(token):
            return token
        text = sealer.unseal(_aad(key, path), token)
        return FORGOTTEN if text is None else text

    return {**body, "case": {**body["case"], "subject": open_("case.subject", body["case"]["subject"])},
            "event": {**event, "summary": open_("summary", event["summary"]),
                      "details": map_personal(event["details"], PERSONAL_PATHS.get(event["type"], ()), open_)}}


class StaleBatch(Exception):
    """The batch was not read right after the outbox's position: another follower moved it."""


@dataclass(frozen=True)
class Pending:
    key: str
    body: dict[str, Any]
    attempts: int
    first_attempt_at: float | None
    case_id: str = ""
    event_type: str = ""


class Outbox:
    """Backend-neutral statements; the subclasses say how names and parameters are written."""

    placeholder = "?"
    real = "REAL"
    lock_path = ""  # SQLite: the file whose flock makes one deliverer per outbox
    datastore: Any
    sealer: Sealer | None = None  # opens the sealed personal fields of a row (the store's keyring)

    def table(self) -> str:
        return "outbox"

    def tracking_table(self) -> str:
        return "tracking"

    def sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def create_outbox_table(self) -> None:
        t = self.table()
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (idempotency_key TEXT PRIMARY KEY, "
                f"notification_id BIGINT NOT NULL UNIQUE, case_id TEXT NOT NULL, event_type TEXT NOT NULL, "
                f"body TEXT NOT NULL, created_at {self.real} NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
                f"first_attempt_at {self.real}, next_attempt_at {self.real} NOT NULL, delivered_at {self.real}, "
                f"delivered_to TEXT, dead_at {self.real}, last_error TEXT)")
            c.execute(f"CREATE INDEX IF NOT EXISTS outbox_due ON {t} (next_attempt_at) "
                      "WHERE delivered_at IS NULL AND dead_at IS NULL")

    def position(self, upstream: str) -> int:
        return self.max_tracking_id(upstream) or 0  # type: ignore[attr-defined]

    def record(self, notes: list[tuple[Notification, int] | tuple[Notification, int, dict[str, Any]]],
               upstream: str, after: int, last: int, now: float) -> None:
        """Copy the notifications (with their notification ids, and the body to store if not the
        notification's own: a sealed one) and move the position from `after` to `last`, atomically;
        refused if the position is not `after` any more."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(self.sql(f"SELECT notification_id FROM {self.tracking_table()} WHERE application_name = ?"
                               + self.for_update()), [upstream])
            row = c.fetchone()
            current = (row["notification_id"] if row else None) or 0
            if current != after:
                raise StaleBatch(f"outbox is at {current}, the batch was read after {after}")
            for note, notification_id, *body in notes:
                c.execute(self.sql(
                    f"INSERT INTO {self.table()} (idempotency_key, notification_id, case_id, event_type, body, "
                    "created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                    [note.notification_id, notification_id, note.case.id, note.event.type,
                     json.dumps(body[0] if body else note.body()), now, now])
            self._insert_tracking(c, Tracking(upstream, last))  # type: ignore[attr-defined]

    def for_update(self) -> str:
        return ""

    def due(self, now: float, limit: int, exclude: list[str] = ()) -> list[Pending]:  # type: ignore[assignment]
        skip = f" AND idempotency_key NOT IN ({', '.join('?' for _ in exclude)})" if exclude else ""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.sql(
                f"SELECT idempotency_key, body, attempts, first_attempt_at, case_id, event_type FROM {self.table()} "
                f"WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ?{skip} "
                "ORDER BY next_attempt_at, notification_id LIMIT ?"), [now, *exclude, limit])
            return [Pending(r["idempotency_key"], opened_body(json.loads(r["body"]), self.sealer), r["attempts"],
                            r["first_attempt_at"], r["case_id"], r["event_type"]) for r in c.fetchall()]

    def next_due(self) -> float | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT MIN(next_attempt_at) AS at FROM {self.table()} "
                      "WHERE delivered_at IS NULL AND dead_at IS NULL")
            row = c.fetchone()
            return row["at"] if row else None

    def mark(self, key: str, **values: Any) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self.sql(f"UPDATE {self.table()} SET {', '.join(f'{k} = ?' for k in values)} "
                               "WHERE idempotency_key = ?"), [*values.values(), key])

    def skip_to(self, upstream: str, head: int) -> int:
        """Move the position to `head` without copying anything (on adopting the outbox over a store
        whose earlier notifications were sent by other means); returns how many events it skipped."""
        after = self.position(upstream)
        if head > after:
            self.record([], upstream, after, head, now=0)
        return max(head - after, 0)

    def requeue_dead(self, now: float) -> int:
        """Give the dead rows a new horizon (an operator's decision after the receiver is fixed)."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"SELECT COUNT(*) AS n FROM {self.table()} WHERE dead_at IS NOT NULL")
            count = c.fetchone()["n"]
            c.execute(self.sql(f"UPDATE {self.table()} SET dead_at = NULL, first_attempt_at = NULL, "
                               "next_attempt_at = ? WHERE dead_at IS NOT NULL"), [now])
            return count

    def rows(self) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT {', '.join(COLUMNS)} FROM {self.table()} ORDER BY notification_id")
            return [dict(r) for r in c.fetchall()]

    def counts(self) -> dict[str, int]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) AS n, COUNT(delivered_at) AS delivered, COUNT(dead_at) AS dead, "
                      f"SUM(CASE WHEN attempts > 0 AND delivered_at IS NULL AND dead_at IS NULL THEN 1 ELSE 0 END) "
                      f"AS retrying FROM {self.table()}")
            r = c.fetchone()
            total, delivered, dead = r["n"], r["delivered"], r["dead"]
            return {"total": total, "delivered": delivered, "dead": dead,
                    "pending": total - delivered - dead, "retrying": r["retrying"] or 0}

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Hold the outbox's single-deliverer lock if it is free; yields whether it is held."""
        raise NotImplementedError


class SQLiteOutbox(Outbox, SQLiteTrackingRecorder):
    def create_table(self) -> None:
        super().create_table()
        self.create_outbox_table()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[bool]:
        with open(self.lock_path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True  # the lock goes with the file, or with the process if it dies


class PostgresOutbox(Outbox, PostgresTrackingRecorder):
    placeholder = "%s"
    real = "DOUBLE PRECISION"

    def table(self) -> str:
        return f'"{self.datastore.schema}".outbox'

    def tracking_table(self) -> str:
        return f'"{self.datastore.schema}".{self.tracking_table_name}'

    def for_update(self) -> str:
        return " FOR UPDATE"

    def create_table(self) -> None:
        super().create_table()
        self.create_outbox_table()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[bool]:
        # A session-level advisory lock on a connection of its own, held while the deliverer runs.
        key = zlib.crc32(f"casework.outbox:{self.datastore.schema}".encode())
        with self.datastore.get_connection() as conn:
            autocommit, conn.autocommit = conn.autocommit, True
            held = conn.execute("SELECT pg_try_advisory_lock(%s) AS held", [key]).fetchone()["held"]
            try:
                yield bool(held)
            finally:
                if held:
                    conn.execute("SELECT pg_advisory_unlock(%s)", [key])
                conn.autocommit = autocommit


def open_outbox(env: dict[str, str]) -> Outbox:
    """The outbox for an eventsourcing environment (SQLITE_DBNAME=..., or POSTGRES_* with a schema)."""
    factory = InfrastructureFactory.construct(Environment(OUTBOX_NAME, env))
    postgres = env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres"
    if postgres:
        with factory.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            c.execute(f'CREATE SCHEMA IF NOT EXISTS "{factory.datastore.schema}"')  # type: ignore[attr-defined]
    outbox: Outbox = factory.tracking_recorder(PostgresOutbox if postgres else SQLiteOutbox)  # type: ignore[assignment]
    if not postgres:
        outbox.lock_path = env["SQLITE_DBNAME"] + ".lock"
    return outbox


class OutboxFollower:
    """Copies the notified events of the store into the outbox, in order, each once."""

    def __init__(self, store: CaseStore, outbox: Outbox, batch_size: int = 500,
                 wake: threading.Event | None = None, public_base_url: str = "") -> None:
        self.store, self.outbox, self.batch_size = store, outbox, batch_size
        self.outbox.sealer = self.outbox.sealer or store.sealer
        self.upstream = store.name
        self.wake = wake or threading.Event()  # set when rows were added, so the deliverer looks now
        self.public_base_url = public_base_url  # bodies link {public_base_url}/cases/{case_id}

    def case_at(self, event: Event, version: int) -> CaseState:
        """The case's state right after its `version`-th event: the cached state when the follower is
        at the head of that case (the live case), else the stream replayed up to that version."""
        current = self.store.state(event.case_id)
        if current is not None and current.version == version:
            return current
        return self.store.repository.get(stream_id(event.case_id), version=version).state

    def step(self) -> int:
        """Copy the next batch; returns how many events of the store it went past."""
        after = self.outbox.position(self.upstream)
        batch = self.store.recorder.select_notifications(after, self.batch_size, inclusive_of_start=False)
        if not batch:
            return 0
        notes = []
        for n in batch:
            if is_case_event(n.topic) and n.topic.rpartition(".")[2] in NOTIFIED:
                stored = self.store.mapper.to_domain_event(n)
                event = EVENT_ADAPTER.validate_python(stored.fact)
                case = self.case_at(event, n.originator_version)
                note = notification_for(event, n.originator_version, case, self.public_base_url)
                notes.append((note, n.id, sealed_body(note, owner_of(stored), self.store.sealer)))
        self.outbox.record(notes, self.upstream, after, batch[-1].id, time.time())
        for note, *_ in notes:
            # Only what routes and counts it: the subject, summary and details may quote personal
            # fields, and logs are not where a forgotten customer's data could be found again.
            details = note.event.details
            log.info("case_notification", key=note.notification_id, case_id=note.case.id,
                     event_type=note.event.type, at=note.event.occurred_at.isoformat(),
                     level=details.get("level"), owner=details.get("owner"), clock=details.get("clock"))
        if notes:
            self.wake.set()
        return len(batch)

    def catch_up(self) -> int:
        total = 0
        while moved := self.step():
            total += moved
        return total

    def run(self, stop: threading.Event, idle_seconds: float = 0.2) -> None:
        log.info("outbox_follower_started", upstream=self.upstream, position=self.outbox.position(self.upstream))
        while not stop.is_set():
            try:
                if not self.step():
                    stop.wait(idle_seconds)
            except (StaleBatch, IntegrityError) as err:  # another follower moved first: read again
                log.warning("outbox_batch_refused", error=str(err))
            except Exception:  # noqa: BLE001 - a bad moment (locked DB, store down) must not end it
                log.exception("outbox_step_failed")
                stop.wait(1.0)
