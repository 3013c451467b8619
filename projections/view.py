"""The reporting view: eventsourcing tracking recorders (SQLite, PostgreSQL) that write the report
tables and the tracking position in one transaction, so each event is applied exactly once.

Exactly once also with several writers (two runners, a rebuild swapping in): every write
transaction is serialized per upstream (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped
advisory lock), and a batch is a compare-and-set on the tracking position: it names the position it
was read after, and is refused unless that is still the position. Notification ids may have gaps,
so "the next id" could not be checked; "read after this very position" can.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder, SQLiteTransaction

from domain.events import Event
from domain.lifecycle import evolve
from domain.model import CaseState
from domain.personal import WITHHELD, scrub
from domain.store import Forgotten
from projections import subjects
from projections.lease import lock_key
from projections.rows import activity_row, case_row, clock_rows, escalation_row, follow_up_rows
from projections.schema import INDEXES, RETIRED_COLUMNS, TABLES, create_statements

KEYS = {"case_state": ("case_id",), "cases": ("case_id",), "sla_clocks": ("case_id", "clock", "cycle")}

# None: a stored event that is neither a case's nor a forgetting (moves the position only).
Batch = list[tuple[Event | Forgotten | None, int]]


class StalePosition(IntegrityError):
    """A batch read after a position that is no longer the tracking position: another runner (or a
    rebuild's swap) moved it first. Nothing was written; read again from the current position."""

    def __init__(self, upstream: str, after: int, position: int):
        super().__init__(f"batch of {upstream} read after position {after}, but the position is now {position}")
        self.upstream, self.after, self.position = upstream, after, position


class ReportView:
    """Backend-neutral logic; the subclasses say how tables are named and parameters are written.

    `prefix` names a second set of tables beside the live ones (a rebuild), swapped in when done.
    """

    placeholder = "?"
    prefix = ""
    datastore: Any
    env: dict[str, str] = {}  # the eventsourcing environment it was opened with (open_view): where its leases live

    def table(self, name: str, prefix: str | None = None) -> str:
        return (self.prefix if prefix is None else prefix) + name

    def tracking_table(self) -> str:
        return "tracking"

    def sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def report_create_statements(self, prefix: str | None = None) -> list[str]:
        prefix = self.prefix if prefix is None else prefix
        out = []
        for statement in create_statements():
            for name in TABLES:
                statement = statement.replace(f" {name} (", f" {self.table(name, prefix)} (")
                statement = statement.replace(f" ON {name} ", f" ON {self.table(name, prefix)} ")
            for index in INDEXES:
                statement = statement.replace(f" EXISTS {index} ", f" EXISTS {prefix}{index} ")
            out.append(statement)
        return out

    def create_report_tables(self) -> None:
        with self._writing() as c:
            for statement in self.report_create_statements():
                c.execute(statement)
            for name, columns in RETIRED_COLUMNS.items():
                for column in columns:
                    if column in self._columns(c, name):
                        c.execute(f"ALTER TABLE {self.table(name)} DROP COLUMN {column}")

    def _columns(self, c: Any, name: str) -> set[str]:
        raise NotImplementedError

    def drop_report_tables(self, upstream: str) -> None:
        with self._writing(upstream) as c:
            for name in TABLES:
                c.execute(f"DROP TABLE IF EXISTS {self.table(name)}")
            c.execute(self.sql(f"DELETE FROM {self.tracking_table()} WHERE application_name = ?"), [upstream])

    def swap_in(self, rebuilt_upstream: str, live_upstream: str, read_after: Callable[[int, int], Batch],
                head: Callable[[], int], batch_size: int = 2000) -> tuple[int, int]:
        """Replace the live tables by this view's (prefixed) ones, with their position, atomically.

        One transaction, holding the live upstream's write lock (so no live batch commits meanwhile):
        first apply to the rebuilt tables whatever the log gained since the rebuild caught up, up
        to its head as of now (`head()`, read under the lock, so at or past anything the live runner
        committed; what is appended meanwhile is the live runner's), then rename them over the live
        ones and give the live upstream the rebuilt position. A live batch that committed before is
        in the log, so the rebuilt tables have it too; one that was in flight is refused by its
        compare-and-set and read again from the new position.
        Returns (events applied here, the new live position).
        """
        with self._writing(live_upstream, ddl=True) as c:
            position = self._position(c, rebuilt_upstream)
            target = head()
            applied = 0
            while position < target and (batch := read_after(position, batch_size)):
                for event, _ in batch:
                    self._apply(c, event)
                applied += len(batch)
                position = batch[-1][1]
            live = self._position(c, live_upstream)
            if position < live:  # the log read back shorter than the live runner saw: never go back
                raise RuntimeError(f"the rebuild reached position {position} of the log, but the live "
                                   f"tables are at {live}: not swapping the reporting tables backwards")
            for name in TABLES:
                c.execute(f"DROP TABLE IF EXISTS {self.table(name, '')}")
                c.execute(f"ALTER TABLE {self.table(name)} RENAME TO {name}")
            for index in INDEXES:  # indexes keep their names when their table is renamed
                c.execute(f"DROP INDEX IF EXISTS {self.index(self.prefix + index)}")
            for statement in self.report_create_statements(prefix=""):
                if "INDEX" in statement:
                    c.execute(statement)
            c.execute(self.sql(f"DELETE FROM {self.tracking_table()} WHERE application_name IN (?, ?)"),
                      [rebuilt_upstream, live_upstream])
            if position:
                self._insert_tracking(c, Tracking(live_upstream, position))  # type: ignore[attr-defined]
        return applied, position

    def index(self, name: str) -> str:
        return name

    def apply_batch(self, batch: Batch, upstream: str, *, after: int) -> None:
        """Apply events in order and move the tracking position to the last, all in one transaction.

        `after` is the position the batch was read after: unless it is still the tracking position
        (read under the upstream's write lock), the batch is refused with StalePosition and nothing
        is written. One position read per batch, on top of the rows.
        """
        with self._writing(upstream) as c:
            position = self._position(c, upstream, for_update=True)
            if position != after:
                raise StalePosition(upstream, after, position)
            for event, _ in batch:
                self._apply(c, event)
            self._insert_tracking(c, Tracking(upstream, batch[-1][1]))  # type: ignore[attr-defined]

    def _position(self, c: Any, upstream: str, for_update: bool = False) -> int:
        c.execute(self.sql(f"SELECT notification_id FROM {self.tracking_table()} WHERE application_name = ?"
                           + (self.for_update if for_update else "")), [upstream])
        row = c.fetchone()
        return (row["notification_id"] or 0) if row else 0

    for_update = ""

    def _writing(self, upstream: str | None = None, ddl: bool = False) -> contextlib.AbstractContextManager:
        """A write transaction, serialized with every other writer of `upstream`'s position."""
        raise NotImplementedError

    sealer: Any = None  # the keyring, to seal what `case_subjects` keeps (set by ReportProjection)

    def _apply(self, c: Any, event: Event | Forgotten | None) -> None:
        if isinstance(event, Forgotten):  # the privacy audit: read models holding personal data drop it
            subjects.forget(self, c, event.customer_id)
            return
        if event is None:
            return
        c.execute(self.sql(f"SELECT state FROM {self.table('case_state')} WHERE case_id = ?"), [event.case_id])
        row = c.fetchone()
        state = evolve(CaseState.model_validate_json(row["state"]) if row else None, event)
        # The projection's memory keeps no personal field: no report reads them, and a table that
        # never held them has nothing to leak or to forget (docs/security-data.md).
        self._upsert(c, "case_state", {"case_id": state.case_id, "state": scrub(state, WITHHELD).model_dump_json()})
        self._upsert(c, "cases", case_row(state, event))
        for clock in clock_rows(state, event.at):
            self._upsert(c, "sla_clocks", clock)
        for name, row_for in (("escalations", escalation_row), ("agent_activity", activity_row)):
            extra = row_for(state, event)
            if extra is not None:
                self._insert(c, name, extra)
        for name, row in follow_up_rows(state, event):
            self._insert(c, name, row)
        subjects.apply(self, c, state, event)

    def _upsert(self, c: Any, name: str, row: dict) -> None:
        keys = KEYS[name]
        updates = ", ".join(f"{k} = excluded.{k}" for k in row if k not in keys)
        c.execute(self.sql(f"INSERT INTO {self.table(name)} ({', '.join(row)}) VALUES "
                           f"({', '.join('?' for _ in row)}) ON CONFLICT ({', '.join(keys)}) "
                           f"DO UPDATE SET {updates}"), list(row.values()))

    def _insert(self, c: Any, name: str, row: dict) -> None:
        c.execute(self.sql(f"INSERT INTO {self.table(name)} ({', '.join(row)}) VALUES "
                           f"({', '.join('?' for _ in row)})"), list(row.values()))

    def query(self, statement: str, params: list | tuple = ()) -> list[dict]:
        """Run a report query; `{cases}`-style names are replaced by this backend's table names."""
        statement = statement.format(**{name: self.table(name) for name in TABLES})
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.sql(statement), list(params))
            return [dict(r) for r in c.fetchall()]


class _Immediate(SQLiteTransaction):
    """eventsourcing's SQLite transaction (rollback on error, its exception types), but BEGIN IMMEDIATE:
    the write lock is taken before the position is read, so read-check-write is one step."""

    def __enter__(self) -> Any:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class SQLiteReportView(ReportView, SQLiteTrackingRecorder):
    @contextlib.contextmanager
    def _writing(self, upstream: str | None = None, ddl: bool = False) -> Iterator[Any]:
        # One write lock per database file: every writer of every upstream waits for it (busy timeout).
        with self.datastore.get_connection(commit=True) as conn, _Immediate(conn, commit=True) as c, c:
            yield c

    def create_table(self) -> None:
        super().create_table()
        self.create_report_tables()

    def _columns(self, c: Any, name: str) -> set[str]:
        c.execute(f"PRAGMA table_info({self.table(name)})")
        return {r["name"] for r in c.fetchall()}


class PostgresReportView(ReportView, PostgresTrackingRecorder):
    placeholder = "%s"
    for_update = " FOR UPDATE"

    @contextlib.contextmanager
    def _writing(self, upstream: str | None = None, ddl: bool = False) -> Iterator[Any]:
        # Transaction-scoped advisory locks, taken first (before any table is touched), so a writer
        # waiting here holds nothing a swap's DDL could wait on; READ COMMITTED then shows it the
        # position as the previous holder left it. Order: DDL lock, then the upstream's lock.
        dbname = self.datastore.pool.kwargs.get("dbname", "")
        with self.datastore.transaction(commit=True) as c:
            if ddl:
                c.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [lock_key("ddl", dbname, self.datastore.schema)])
            if upstream is not None:
                c.execute("SELECT pg_advisory_xact_lock(%s::bigint)",
                          [lock_key("write", dbname, self.datastore.schema, upstream)])
            yield c

    def table(self, name: str, prefix: str | None = None) -> str:
        return f'"{self.datastore.schema}".{super().table(name, prefix)}'

    def index(self, name: str) -> str:
        return f'"{self.datastore.schema}".{name}'

    def tracking_table(self) -> str:
        return f'"{self.datastore.schema}".{self.tracking_table_name}'

    def _columns(self, c: Any, name: str) -> set[str]:
        c.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                  [self.datastore.schema, self.prefix + name])
        return {r["column_name"] for r in c.fetchall()}

    def create_table(self) -> None:
        super().create_table()
        self.create_report_tables()
