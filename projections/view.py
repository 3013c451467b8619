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
from typing import Any

import msgspec
from eventsourcing.persistence import IntegrityError, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder, SQLiteTransaction

from domain.model import CaseState
from domain.store import Forgotten
from projections import dashboard, handlers, memory, subjects
from projections.facts import Fact
from projections.lease import lock_key
from projections.schema import INDEXES, RETIRED_COLUMNS, RETIRED_INDEXES, TABLES, create_statements

KEYS = {"case_state": ("case_id",), "cases": ("case_id",), "sla_clocks": ("case_id", "clock", "cycle")}

# A case's event as the projection reads it (projections/facts.py), a forgetting, or None: a stored
# event that is neither (moves the position only).
Batch = list[tuple[Fact | Forgotten | None, int]]
_JSON = msgspec.json.Encoder()


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
    concat_function = "group_concat"  # the aggregate joining text (console/figures.py reads dashboard_days with it)
    single_precision_reals = False  # REAL is a 4-byte float (PostgreSQL): what dashboard_days ranks is rounded so
    dashboard_zone: str | None = None  # the zone dashboard_days is kept in (None: not kept); open_view sets it
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
        # Each retired index in a transaction of its own: on PostgreSQL a DROP INDEX locks its table
        # until commit, and holding sla_clocks while waiting for cases deadlocked with a console page
        # reading cases then sla_clocks. One table locked at a time makes no cycle.
        for index in RETIRED_INDEXES:
            with self._writing() as c:
                c.execute(f"DROP INDEX IF EXISTS {self.index(self.prefix + index)}")

    def _columns(self, c: Any, name: str) -> set[str]:
        raise NotImplementedError

    # Whether a bulk load drops the secondary indexes (schema.INDEXES) to build them after it.
    defers_indexes = False
    bulk = False  # a bulk load is under way: the dashboard's days are derived when it ends

    def begin_bulk(self) -> None:
        """Tables filled from nothing (projections.runner.ReportProjection.bulk): each secondary index
        built once after the load (a sort), rather than an entry per row written into a page picked by
        the row's key (on SQLite a third of the pages a catch-up commits); and the dashboard's days
        derived once from `cases` after it, rather than each batch's days read, changed and rewritten.
        Meanwhile the days lag the position, so the console counts the cases itself."""
        if self.defers_indexes:
            with self._writing() as c:
                for index in INDEXES:
                    c.execute(f"DROP INDEX IF EXISTS {self.index(self.prefix + index)}")
        self.bulk = True

    def end_bulk(self, upstream: str) -> None:
        self.bulk = False
        self.settle(upstream)

    def settle(self, upstream: str) -> None:
        """What a bulk load leaves to its end, made, in one transaction: the missing indexes, and the
        days as of the position where they lag it. Also what a bulk load that never ended (its process
        killed) left undone, for a runner starting or taking over; for tables in order, a write
        transaction that changes nothing."""
        with self._writing(upstream) as c:
            if self.defers_indexes:
                for statement in self.index_statements():
                    c.execute(statement)
            dashboard.bring_up_to(self, c, self.dashboard_zone, self._position(c, upstream))

    def index_statements(self, prefix: str | None = None) -> list[str]:
        return [s for s in self.report_create_statements(prefix) if s.startswith("CREATE INDEX")]

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
                self._apply_events(c, batch, position)
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
            for statement in self.index_statements(prefix=""):
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
            self._apply_events(c, batch, after)
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

    def _apply_events(self, c: Any, batch: Batch, after: int) -> None:
        """Apply a batch's events (projections/handlers.py): the memories of the cases it touches are
        read once, the events applied to them in memory, and each row written once per batch
        (executemany per table), not once per event. A forgetting drops the sealed subjects
        (`case_subjects`) of the customer, those of the batch so far included."""
        pending = handlers.Pending()
        self._load_memories(c, pending, batch)
        # The cases' shares of their days before the batch (none in a bulk load: end_bulk derives them).
        days = None if self.bulk else dashboard.Days(self, c, pending.memories, after)
        apply = handlers.apply
        for event, _ in batch:
            if event is None:
                continue
            if isinstance(event, Forgotten):  # the privacy audit: read models holding personal data drop it
                pending.subjects = [s for s in pending.subjects if s[1] != event.customer_id]
                subjects.forget(self, c, event.customer_id)
            else:
                apply(pending, event)
        self._flush(c, pending)
        if days is not None:
            days.write(c, pending.memories, pending.latest, batch[-1][1])

    def _load_memories(self, c: Any, pending: handlers.Pending, batch: Batch) -> None:
        """The memories of the batch's cases that were opened before it."""
        opened, wanted = set(), set()
        for event, _ in batch:
            if event is None or isinstance(event, Forgotten) or event.case_id in opened:
                continue
            (opened if event.type == "CaseOpened" and event.case_id not in wanted else wanted).add(event.case_id)
        ids, old = sorted(wanted), {}
        for i in range(0, len(ids), 500):  # under every backend's limit on parameters
            chunk = ids[i:i + 500]
            c.execute(self.sql(f"SELECT case_id, state FROM {self.table('case_state')} WHERE case_id IN "
                               f"({', '.join('?' for _ in chunk)})"), chunk)
            for row in c.fetchall():
                found = memory.loads(row["state"])
                if found is None:
                    old[row["case_id"]] = row["state"]
                else:
                    pending.memories[row["case_id"]] = found
        if old:  # rows of an earlier version: the whole domain state (scrubbed); the staff from agent_activity
            staff: dict[str, list[tuple[str, str]]] = defaultdict(list)
            ids = sorted(old)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                c.execute(self.sql(f"SELECT DISTINCT case_id, actor_id, actor_role FROM "
                                   f"{self.table('agent_activity')} WHERE case_id IN "
                                   f"({', '.join('?' for _ in chunk)})"), chunk)
                for row in c.fetchall():
                    staff[row["case_id"]].append((row["actor_id"], row["actor_role"]))
            for case_id, text in old.items():
                pending.memories[case_id] = memory.from_state(CaseState.model_validate_json(text), staff[case_id],
                                                              pending.calendars)
        keys = sorted({m.calendar for m in pending.memories.values() if m.calendar and not memory.known(m.calendar)})
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            c.execute(self.sql(f"SELECT calendar_key, calendar FROM {self.table('sla_calendars')} WHERE calendar_key "
                               f"IN ({', '.join('?' for _ in chunk)})"), chunk)
            for row in c.fetchall():
                memory.remember(row["calendar_key"], row["calendar"])

    def _flush(self, c: Any, pending: handlers.Pending) -> None:
        cases, memories, clocks = [], [], dict(pending.superseded)
        case_row, clock_rows, dumps = handlers.case_row, handlers.clock_rows, memory.dumps
        for case_id, latest in pending.latest.items():
            m = pending.memories[case_id]
            cases.append(case_row(m, latest))
            for row in clock_rows(pending, m, latest.at):
                clocks[row[:3]] = row
            memories.append((case_id, dumps(m)))
        self._add_agent_totals(c, pending)
        self.write_rows(c, "sla_calendars", ("calendar_key", "calendar"),
                        [(key, raw.decode()) for key, raw in sorted(pending.calendars.items())],
                        "ON CONFLICT (calendar_key) DO NOTHING")
        self._upsert_many(c, "case_state", ("case_id", "state"), memories)
        self._upsert_many(c, "cases", handlers.CASE_COLUMNS, cases)
        self._upsert_many(c, "sla_clocks", handlers.CLOCK_COLUMNS, list(clocks.values()))
        for table, rows in pending.appended.items():
            self.write_rows(c, table, handlers.APPENDED[table], rows)
        subjects.write(self, c, pending.subjects)

    def _add_agent_totals(self, c: Any, pending: handlers.Pending) -> None:
        """Add a batch's staff actions to agent_totals, and the cases each staff member acted on for the
        first time (the memories remember who acted on each case)."""
        self.write_rows(c, "agent_totals", ("actor_id", "actor_role", "actions", "cases_touched"),
                        [(actor, role, n, pending.touched[(actor, role)]) for (actor, role), n in pending.actions.items()],
                        "ON CONFLICT (actor_id, actor_role) DO UPDATE SET actions = t.actions + excluded.actions, "
                        "cases_touched = t.cases_touched + excluded.cases_touched")

    def _upsert_many(self, c: Any, name: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        keys = KEYS[name]
        updates = ", ".join(f"{k} = excluded.{k}" for k in columns if k not in keys)
        self.write_rows(c, name, columns, rows, f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}")

    def write_rows(self, c: Any, name: str, columns: tuple[str, ...], rows: list[tuple], conflict: str = "") -> None:
        """Insert rows (tuples in the order of `columns`) into table `name` (the table aliased `t`
        for `conflict`, an ON CONFLICT clause): one executemany."""
        if rows:
            c.executemany(self.sql(f"INSERT INTO {self.table(name)} AS t ({', '.join(columns)}) VALUES "
                                   f"({', '.join('?' for _ in columns)}) {conflict}"), rows)

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
        names = {**{name: self.table(name) for name in TABLES}, "tracking": self.tracking_table()}
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
    # PostgreSQL's do not (it meets its catch-up target without, and dropping an index there takes
    # a lock a console page reading the table would wait on, or deadlock with: create_report_tables).
    defers_indexes = True

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
    concat_function = "string_agg"
    single_precision_reals = True

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

    def write_rows(self, c: Any, name: str, columns: tuple[str, ...], rows: list[tuple], conflict: str = "") -> None:
        """One statement for all the rows: sent as one JSON array and turned into the table's rows by
        the server (json_populate_recordset). Through the pure-Python driver, a statement per row
        (executemany) costs more in the client than everything else the projection does."""
        if rows:
            table, names = self.table(name), ", ".join(columns)
            data = _JSON.encode([dict(zip(columns, row)) for row in rows]).decode()
            c.execute(f"INSERT INTO {table} AS t ({names}) SELECT {names} FROM "
                      f"json_populate_recordset(NULL::{table}, %s::json) {conflict}", [data])

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
