"""Settings for an engine's stores on SQLite (a data directory) or PostgreSQL (a fresh database)."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from casework.config import Settings
from domain.commands import AddNote, BookAppointment, OpenCase
from domain.model import Actor
from tests.pg import create_database

AGENT = Actor(id="agent-ann", role="agent")
SUPERVISOR = Actor(id="sup-sam", role="supervisor")


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def settings_for(backend: str, data_dir: Path, server: dict | None = None, dbname: str | None = None,
                 **values) -> Settings:
    if backend == "sqlite":
        return Settings(data_dir=data_dir, **values)
    if dbname is None:
        dbname = f"cw_{uuid.uuid4().hex[:10]}"
        create_database(server, dbname)
    return Settings(data_dir=data_dir, event_store="postgres", postgres_host=server["host"],
                    postgres_port=int(server["port"]), postgres_user=server["user"], postgres_dbname=dbname, **values)


def pg_dump_bytes(settings: Settings) -> bytes:
    """Every row of every table of the database, as PostgreSQL's COPY writes it (a pg_dump's data)."""
    out = []
    with psycopg.connect(host=settings.postgres_host, port=settings.postgres_port, user=settings.postgres_user,
                         dbname=settings.postgres_dbname) as db:
        tables = db.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
                            "('pg_catalog', 'information_schema')").fetchall()
        for schema, table in tables:
            with db.cursor().copy(f'COPY "{schema}"."{table}" TO STDOUT') as copy:
                out.extend(bytes(block) for block in copy)
    return b"".join(out)


def open_case(store, case_id: str, customer_id: str, name: str, description: str, contact: str = "") -> int:
    outcome = store.execute(case_id, OpenCase(
        command_id=f"open-{case_id}", actor=AGENT, case_id=case_id,
        customer={"id": customer_id, "name": name, "contact": contact or None},
        channel="phone", category="fault", subject=f"{name} subject", description=description),
        datetime.now(UTC), 0)
    assert outcome.refusal is None, outcome.refusal
    return outcome.version


def note(store, case_id: str, text: str, after: int) -> int:
    outcome = store.execute(case_id, AddNote(command_id=str(uuid.uuid4()), actor=AGENT, text=text),
                            datetime.now(UTC), after)
    assert outcome.refusal is None, outcome.refusal
    return outcome.version


def book(store, case_id: str, place: str, after: int) -> int:
    outcome = store.execute(case_id, BookAppointment(command_id=str(uuid.uuid4()), actor=AGENT, at=datetime.now(UTC),
                                                     place=place, need="boiler check"), datetime.now(UTC), after)
    assert outcome.refusal is None, outcome.refusal
    return outcome.version
