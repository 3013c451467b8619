"""The reporting view: eventsourcing tracking recorders (SQLite, PostgreSQL) that write the report
tables and the tracking position in one transaction, so each event is applied exactly once."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

from domain.events import Event
from domain.lifecycle import evolve
from domain.model import CaseState
from projections.rows import activity_row, case_row, clock_rows, escalation_row, follow_up_rows
from projections.schema import INDEXES, TABLES, create_statements

KEYS = {"case_state": ("case_id",), "cases": ("case_id",), "sla_clocks": ("case_id", "clock")}


class ReportView:
    """Backend-neutral logic; the subclasses say how tables are named and parameters are written.

    `prefix` names a second set of tables beside the live ones (a rebuild), swapped in when done.
    """

    placeholder = "?"
    prefix = ""
    datastore: Any

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
        with self.datastore.transaction(commit=True) as c:
            for statement in self.report_create_statements():
                c.execute(statement)

    def drop_report_tables(self, upstream: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            for name in TABLES:
                c.execute(f"DROP TABLE IF EXISTS {self.table(name)}")
            c.execute(self.sql(f"DELETE FROM {self.tracking_table()} WHERE application_name = ?"), [upstream])

    def swap_in(self, rebuilt_upstream: str, live_upstream: str) -> None:
        """Replace the live tables by this view's (prefixed) ones, with their position, atomically."""
        with self.datastore.transaction(commit=True) as c:
            for name in TABLES:
                c.execute(f"DROP TABLE IF EXISTS {self.table(name, '')}")
                c.execute(f"ALTER TABLE {self.table(name)} RENAME TO {name}")
            for index in INDEXES:  # indexes keep their names when their table is renamed
                c.execute(f"DROP INDEX IF EXISTS {self.index(self.prefix + index)}")
            for statement in self.report_create_statements(prefix=""):
                if "INDEX" in statement:
                    c.execute(statement)
            c.execute(self.sql(f"SELECT notification_id FROM {self.tracking_table()} WHERE application_name = ?"),
                      [rebuilt_upstream])
            position = c.fetchone()["notification_id"]
            c.execute(self.sql(f"DELETE FROM {self.tracking_table()} WHERE application_name IN (?, ?)"),
                      [rebuilt_upstream, live_upstream])
            self._insert_tracking(c, Tracking(live_upstream, position))  # type: ignore[attr-defined]

    def index(self, name: str) -> str:
        return name

    def apply_batch(self, batch: list[tuple[Event, int]], upstream: str) -> None:
        """Apply events in order and move the tracking position to the last, all in one transaction.

        A batch already applied (even in part) is refused by the tracking insert, and rolls back.
        """
        with self.datastore.transaction(commit=True) as c:
            for event, _ in batch:
                self._apply(c, event)
            self._insert_tracking(c, Tracking(upstream, batch[-1][1]))  # type: ignore[attr-defined]

    def _apply(self, c: Any, event: Event) -> None:
        c.execute(self.sql(f"SELECT state FROM {self.table('case_state')} WHERE case_id = ?"), [event.case_id])
        row = c.fetchone()
        state = evolve(CaseState.model_validate_json(row["state"]) if row else None, event)
        self._upsert(c, "case_state", {"case_id": state.case_id, "state": state.model_dump_json()})
        self._upsert(c, "cases", case_row(state, event))
        for clock in clock_rows(state, event.at):
            self._upsert(c, "sla_clocks", clock)
        for name, row_for in (("escalations", escalation_row), ("agent_activity", activity_row)):
            extra = row_for(state, event)
            if extra is not None:
                self._insert(c, name, extra)
        for name, row in follow_up_rows(state, event):
            self._insert(c, name, row)

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


class SQLiteReportView(ReportView, SQLiteTrackingRecorder):
    def create_table(self) -> None:
        super().create_table()
        self.create_report_tables()


class PostgresReportView(ReportView, PostgresTrackingRecorder):
    placeholder = "%s"

    def table(self, name: str, prefix: str | None = None) -> str:
        return f'"{self.datastore.schema}".{super().table(name, prefix)}'

    def index(self, name: str) -> str:
        return f'"{self.datastore.schema}".{name}'

    def tracking_table(self) -> str:
        return f'"{self.datastore.schema}".{self.tracking_table_name}'

    def create_table(self) -> None:
        super().create_table()
        self.create_report_tables()
