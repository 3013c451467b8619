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
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder, SQLiteTransaction

from domain.events import Event
from domain.lifecycle import evolve
from domain.model import CaseState
from domain.store import Forgotten
from projections import subjects
from projections.lease import lock_key
from projections.rows import EVENT_ROWS, case_row, clock_rows, scrubbed_json
from projections.schema import INDEXES, RETIRED_COLUMNS, TABLES, create_statements

KEYS = {"case_state": ("case_id",), "cases": ("case_id",), "sla_clocks": ("case_id", "clock", "cycle")}

# None: a stored event that is neither a case's nor a forgetting (moves the position only).
Batch = list[tuple[Event | Forgotten | None, int]]


@dataclass
class _Pending:
    """What a batch did to the cases it touched, in memory until the batch is written."""

    states: dict[str, CaseState] = field(default_factory=dict)  # each case's state after its latest event
    latest: dict[str, Event] = field(default_factory=dict)  # the case's latest event of the batch
    # (case, clock, cycle) -> the state and instant of the batch's last event while that cycle was current
    clocks: dict[tuple[str, str, int], tuple[CaseState, datetime]] = field(default_factory=dict)
    rows: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))  # appended rows, per table


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
    # How a report reads values by rank (reports.response_times): SQLite by index with LIMIT/OFFSET,
    # PostgreSQL in one statement with ordered-set aggregates (array_agg ... ORDER BY).
    ranks_in_one_statement = False
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
            had_totals = "actions" in self._columns(c, "agent_totals")
            for statement in self.report_create_statements():
                c.execute(statement)
            if not had_totals:  # tables of an earlier version: total what they hold once
                self.fill_agent_totals(c)
            for name, columns in RETIRED_COLUMNS.items():
                for column in columns:
                    if column in self._columns(c, name):
                        c.execute(f"ALTER TABLE {self.table(name)} DROP COLUMN {column}")

    def _columns(self, c: Any, name: str) -> set[str]:
        raise NotImplementedError

    def fill_agent_totals(self, c: Any) -> None:
        """agent_totals from agent_activity as it stands (the projection keeps it up to date after)."""
        c.execute(f"DELETE FROM {self.table('agent_totals')}")
        c.execute(f"INSERT INTO {self.table('agent_totals')} (actor_id, actor_role, actions, cases_touched) "
                  f"SELECT actor_id, actor_role, COUNT(*), COUNT(DISTINCT case_id) FROM {self.table('agent_activity')} "
                  f"GROUP BY actor_id, actor_role")

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
                self._apply_events(c, batch)
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
            self._apply_events(c, batch)
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

    def _apply_events(self, c: Any, batch: Batch) -> None:
        """Apply a batch's events: the cases it touches are read once, evolved in memory, and each row
        is written once per batch (executemany per table), not once per event. The sealed subjects
        (`case_subjects`) are written as they come, so a forgetting later in the batch erases them."""
        pending = _Pending()
        self._load_states(c, pending, {event.case_id for event, _ in batch if isinstance(event, Event)})
        for event, _ in batch:
            if isinstance(event, Forgotten):  # the privacy audit: read models holding personal data drop it
                subjects.forget(self, c, event.customer_id)
            elif event is not None:
                self._apply(pending, event)
                subjects.apply(self, c, pending.states[event.case_id], event)
        self._flush(c, pending)

    def _load_states(self, c: Any, pending: _Pending, case_ids: set[str]) -> None:
        ids = sorted(case_ids)
        for i in range(0, len(ids), 500):  # under every backend's limit on parameters
            chunk = ids[i:i + 500]
            c.execute(self.sql(f"SELECT case_id, state FROM {self.table('case_state')} WHERE case_id IN "
                               f"({', '.join('?' for _ in chunk)})"), chunk)
            for row in c.fetchall():
                pending.states[row["case_id"]] = CaseState.model_validate_json(row["state"])

    def _apply(self, pending: _Pending, event: Event) -> None:
        """One event: the domain's `evolve` (so the tables and the engine cannot disagree), then the
        rows it appends; the rows kept per case (and per clock cycle) are only noted, to be written
        once by `_flush`. Tables appended to per event: add a function to `rows.EVENT_ROWS`."""
        state = evolve(pending.states.get(event.case_id), event)
        pending.states[event.case_id] = state
        pending.latest[event.case_id] = event
        if state.sla is not None:  # the clock rows clock_rows(state, event.at) would write now
            for name, clock in state.clocks.items():
                pending.clocks[(state.case_id, name, clock.cycle)] = (state, event.at)
        for rows_for in EVENT_ROWS:
            for table, row in rows_for(state, event):
                pending.rows[table].append(row)

    def _flush(self, c: Any, pending: _Pending) -> None:
        memory, cases = [], []
        for case_id, event in pending.latest.items():
            state = pending.states[case_id]
            # The projection's memory keeps no personal field: no report reads them, and a table that
            # never held them has nothing to leak or to forget (docs/security-data.md).
            memory.append({"case_id": case_id, "state": scrubbed_json(state)})
            cases.append(case_row(state, event))
        clocks = []
        views: dict[tuple[int, datetime], dict[str, dict]] = {}
        for (_, name, _), (state, at) in pending.clocks.items():
            # A cycle's row as of the last event of the batch while it was the clock's current cycle
            # (a next_response cycle's row is final once the next starts), as per-event upserts left it.
            key = (id(state), at)
            if key not in views:
                views[key] = {row["clock"]: row for row in clock_rows(state, at)}
            clocks.append(views[key][name])
        self._add_agent_totals(c, pending.rows.get("agent_activity", []))
        self._upsert_many(c, "case_state", memory)
        self._upsert_many(c, "cases", cases)
        self._upsert_many(c, "sla_clocks", clocks)
        for table, rows in pending.rows.items():
            self._insert_many(c, table, rows)

    def _add_agent_totals(self, c: Any, activity: list[dict]) -> None:
        """Add a batch's agent_activity rows to agent_totals (before they are inserted): actions, and
        the cases the staff member had not touched before."""
        if not activity:
            return
        touched: dict[tuple[str, str], set[str]] = defaultdict(set)
        actions: dict[tuple[str, str], int] = defaultdict(int)
        for row in activity:
            touched[(row["actor_id"], row["actor_role"])].add(row["case_id"])
            actions[(row["actor_id"], row["actor_role"])] += 1
        ids = sorted({row["case_id"] for row in activity})
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            c.execute(self.sql(f"SELECT DISTINCT case_id, actor_id, actor_role FROM {self.table('agent_activity')} "
                               f"WHERE case_id IN ({', '.join('?' for _ in chunk)})"), chunk)
            for row in c.fetchall():
                touched.get((row["actor_id"], row["actor_role"]), set()).discard(row["case_id"])
        c.executemany(self.sql(
            f"INSERT INTO {self.table('agent_totals')} AS t (actor_id, actor_role, actions, cases_touched) "
            f"VALUES (?, ?, ?, ?) ON CONFLICT (actor_id, actor_role) DO UPDATE SET "
            f"actions = t.actions + excluded.actions, cases_touched = t.cases_touched + excluded.cases_touched"),
            [[actor, role, n, len(touched[(actor, role)])] for (actor, role), n in actions.items()])

    def _upsert_many(self, c: Any, name: str, rows: list[dict]) -> None:
        if not rows:
            return
        keys, columns = KEYS[name], list(rows[0])
        updates = ", ".join(f"{k} = excluded.{k}" for k in columns if k not in keys)
        c.executemany(self.sql(f"INSERT INTO {self.table(name)} ({', '.join(columns)}) VALUES "
                               f"({', '.join('?' for _ in columns)}) ON CONFLICT ({', '.join(keys)}) "
                               f"DO UPDATE SET {updates}"), [[row[k] for k in columns] for row in rows])

    def _insert_many(self, c: Any, name: str, rows: list[dict]) -> None:
        by_columns: dict[tuple[str, ...], list[list]] = defaultdict(list)
        for row in rows:
            by_columns[tuple(row)].append(list(row.values()))
        for columns, values in by_columns.items():
            c.executemany(self.sql(f"INSERT INTO {self.table(name)} ({', '.join(columns)}) VALUES "
                                   f"({', '.join('?' for _ in columns)})"), values)

    def query(self, statement: str, params: list | tuple = ()) -> list[dict]:
        """Run a report query; `{cases}`-style names are replaced by this backend's table names."""
        with self.reading() as query:
            return query(statement, params)

    rows_are_sequences = False  # the driver's rows can be read by position (SQLite's sqlite3.Row)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Callable[..., list]]:
        """Several report queries in one read transaction: yields query(statement, params=(),
        positional=False). Positional: rows read by position (no dict per row, for the few queries
        that fetch tens of thousands of rows)."""
        names = {name: self.table(name) for name in TABLES}
        with self.datastore.transaction(commit=False) as c:

            def query(statement: str, params: list | tuple = (), positional: bool = False) -> list:
                c.execute(self.sql(statement.format(**names)), list(params))
                rows = c.fetchall()
                if positional:
                    return rows if self.rows_are_sequences else [tuple(r.values()) for r in rows]
                return [dict(r) for r in rows]

            yield query


class _Immediate(SQLiteTransaction):
    """eventsourcing's SQLite transaction (rollback on error, its exception types), but BEGIN IMMEDIATE:
    the write lock is taken before the position is read, so read-check-write is one step."""

    def __enter__(self) -> Any:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class SQLiteReportView(ReportView, SQLiteTrackingRecorder):
    rows_are_sequences = True

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
    ranks_in_one_statement = True

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
