"""Opening the engine's local data for commands that only read it (reports, `list`, the content of
`show`), without creating anything: a command run from the wrong directory must say where it looked
and what is missing, not make empty databases there and print "(no rows)".

SQLite: the files must exist (the engine made them). PostgreSQL: the tables must exist; nothing is
created (CREATE_TABLE off, no schema made).
"""

from __future__ import annotations

import os
from pathlib import Path

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from casework.cli_support import NotFound
from casework.config import Settings, reporting_env, sqlite_env
from domain.store import CaseStore
from projections.lease import POSTGRES
from projections.runner import PROJECTION_NAME
from projections.view import PostgresReportView, ReportView, SQLiteReportView


def _where(settings: Settings) -> str:
    data_dir = settings.data_dir
    how = "CASEWORK_DATA_DIR" if os.environ.get("CASEWORK_DATA_DIR") else "the default data directory"
    rel = "" if data_dir.is_absolute() else f", relative to the current directory {Path.cwd()}"
    return (f"{how} is '{data_dir}'{rel}; run the command where the engine keeps its data, or set "
            "CASEWORK_DATA_DIR to that directory")


def require_sqlite_files(settings: Settings, what: str, *paths: Path) -> None:
    """NotFound naming the first missing file, where it was looked for and how to point elsewhere."""
    for path in paths:
        if not path.is_file():
            raise NotFound(f"no {what} here: {path.resolve()} does not exist ({_where(settings)})")


def reporting_view(settings: Settings) -> ReportView:
    """The reporting tables, opened for reading only; NotFound when there are none."""
    if settings.event_store == "sqlite":
        path = settings.data_dir / "reporting.db"
        require_sqlite_files(settings, "reporting tables", path)
        env, cls = sqlite_env(path), SQLiteReportView
    else:
        env, cls = reporting_env(settings), PostgresReportView
    env = {**env, "CREATE_TABLE": "false"}  # read: never create the tracking or report tables
    factory = InfrastructureFactory.construct(Environment(PROJECTION_NAME, env))
    view = factory.tracking_recorder(type("View", (cls,), {}))
    view.env = dict(env)
    try:
        view.query("SELECT 1 FROM {cases} WHERE 1 = 0")
    except Exception as err:  # noqa: BLE001 - SQLite and PostgreSQL raise their own "no such table"
        where = (f"{settings.data_dir / 'reporting.db'}" if env.get("PERSISTENCE_MODULE") != POSTGRES
                 else f"schema '{settings.reporting_schema}' of database '{settings.postgres_dbname}'")
        raise NotFound(f"no reporting tables in {where} ({type(err).__name__}: {err}); the engine's "
                       "projection creates them (casework run, or casework projections catch-up)") from None
    return view


def case_store_for_reading(settings: Settings) -> CaseStore:
    """The event store, opened only where it exists (SQLite: the files the engine made, with the keys
    it made unless the settings give them); NotFound otherwise."""
    from casework.stores import open_case_store

    if settings.event_store == "sqlite":
        needed = [settings.events_db]
        if settings.store_encryption:
            needed.append(settings.keyring_db)
            if not (settings.store_cipher_keys or settings.store_cipher_key_file):
                needed.append(settings.keys_dir / "store.keys")
            if not (settings.keyring_master_keys or settings.keyring_master_key_file):
                needed.append(settings.keys_dir / "master.keys")
        require_sqlite_files(settings, "event store", *needed)
    return open_case_store(settings)
