"""The event store's log as the projection reads it: (notification id, topic, stored state bytes),
in order, after a position.

The same rows eventsourcing's `select_notifications` returns, read by the same SQL from its own
tables (SQLite: `rowid` of `stored_events`; PostgreSQL: `notification_id`), but without building a
Notification and a UUID per row, and on PostgreSQL with the state read in binary (the text form of
a bytea is unescaped in Python by the pure-Python driver, as much work as the rest of the read).
Any other recorder is read through `select_notifications`.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

Row = tuple[int, str, bytes]


def reader(recorder: Any) -> Any:
    """read(after, limit) -> the next rows of the log after notification id `after`."""
    if isinstance(recorder, SQLiteApplicationRecorder):
        statement = f"SELECT rowid, topic, state FROM {recorder.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?"

        def read_sqlite(after: int, limit: int) -> list[Row]:
            with recorder.datastore.transaction(commit=False) as c:
                cursor = c.sqlite_cursor  # read as plain tuples, not a sqlite3.Row each
                cursor.row_factory = None
                cursor.execute(statement, (after, limit))
                return cursor.fetchall()

        return read_sqlite
    if isinstance(recorder, PostgresApplicationRecorder):
        query = SQL("SELECT notification_id, topic, state FROM {}.{} WHERE notification_id > %s "
                    "ORDER BY notification_id LIMIT %s").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))

        def read_postgres(after: int, limit: int) -> list[Row]:
            with recorder.datastore.get_connection() as conn, \
                    conn.cursor(binary=True, row_factory=tuple_row) as curs:
                curs.execute(query, (after, limit), prepare=True)
                return curs.fetchall()

        return read_postgres

    def read_any(after: int, limit: int) -> list[Row]:
        return [(n.id, n.topic, n.state) for n in recorder.select_notifications(after, limit, inclusive_of_start=False)]

    return read_any
