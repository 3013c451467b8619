"""The grep test: the real engine (`casework run`, its embedded Temporal dev server, SQLite or
PostgreSQL), a customer with distinctive data, `casework forget-customer`, then every byte the engine
left on disk searched for that data: nothing, while another customer stays readable."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from casework.client import CaseworkClient, connect
from casework.stores import open_case_store
from domain.commands import (
    AddNote, BookAppointment, CloseCase, OpenCase, ProposeSolution, RecordCustomerReply, RequestClarification,
    Respond,
)
from domain.ids import workflow_id_for
from domain.model import Actor
from domain.personal import FORGOTTEN
from tests.notify.receiver import free_port
from casework.config import Settings
from tests.security.shred_helpers import new_key, settings_for

BIN = Path(sys.executable).parent
AGENT = Actor(id="agent-ann", role="agent")

# Customer A: everything personal the engine takes, each distinctive enough to grep for.
A = {"name": "Philippa Wexcombe-Trask", "contact": "+44 7700 900461 wexcombe@trask.example",
     "subject": "Heatpump Zorblax fault", "description": "The Zorblax unit in the Wexcombe attic hums",
     "place": "14 Quillon Mews, door code 7743B", "need": "bring the Trask ladder",
     "question": "Is the Quillon breaker off?", "reply": "Breaker labelled Mirabeau-Q is off",
     "message": "Engineer Oswin will come", "note": "Mrs Wexcombe-Trask prefers mornings",
     "solution": "Replaced the Zorblax capacitor", "close": "Wexcombe duplicate of earlier call"}
B = {"name": "Cornelius Abernathy-Voss", "description": "Abernathy printer jams daily"}


def command_id() -> str:
    return str(uuid.uuid4())


async def connected(address: str, payload_key: str | None):
    # With a payload key the engine's payloads are encrypted: a client needs the same key to talk to it.
    return await connect(address, settings=Settings(payload_key=[payload_key])) if payload_key else await connect(address)


async def drive(address: str, a_cases: list[str], b_case: str, a_closed: str, payload_key: str | None = None) -> None:
    cases = CaseworkClient(await connected(address, payload_key))
    when = datetime.now(UTC) + timedelta(days=2)
    for cid in [*a_cases, a_closed]:
        await cases.open_case(OpenCase(
            command_id=command_id(), actor=AGENT, case_id=cid,
            customer={"id": "cust-wexcombe", "name": A["name"], "contact": A["contact"]},
            channel="phone", category="fault", subject=A["subject"], description=A["description"]))
    first = a_cases[0]
    for cmd in [BookAppointment(command_id=command_id(), actor=AGENT, at=when, place=A["place"], need=A["need"]),
                RequestClarification(command_id=command_id(), actor=AGENT, question=A["question"]),
                RecordCustomerReply(command_id=command_id(), actor=AGENT, message=A["reply"]),
                Respond(command_id=command_id(), actor=AGENT, message=A["message"]),
                AddNote(command_id=command_id(), actor=AGENT, text=A["note"]),
                ProposeSolution(command_id=command_id(), actor=AGENT, summary=A["solution"])]:
        await cases.send(first, cmd)
    await cases.send(a_closed, CloseCase(command_id=command_id(), actor=AGENT, reason="duplicate", note=A["close"]))
    await cases.open_case(OpenCase(
        command_id=command_id(), actor=AGENT, case_id=b_case, customer={"id": "cust-voss", "name": B["name"]},
        channel="email", category="fault", subject="Printer", description=B["description"]))


async def after_forgetting(address: str, a_cases: list[str], b_case: str, payload_key: str | None = None) -> dict:
    client = await connected(address, payload_key)
    cases = CaseworkClient(client)
    out: dict = {"states": {}, "histories": {}}
    for cid in [*a_cases, b_case]:
        out["states"][cid] = await cases.state(cid)
        # The current run's whole history as Temporal holds it (payloads as their raw bytes).
        history = await client.get_workflow_handle(workflow_id_for(cid)).fetch_history()
        out["histories"][cid] = b"".join(e.SerializeToString() for e in history.events)
    # The case goes on after its hand-over.
    out["noted"] = await cases.send(a_cases[0], AddNote(command_id=command_id(), actor=AGENT, text="after forgetting"))
    return out


def grep(paths: list[Path], needles: dict[str, str]) -> list[str]:
    found = []
    for path in paths:
        data = path.read_bytes()
        found += [f"{key} in {path}" for key, text in needles.items() if text.encode() in data]
    return found


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def run_engine_scenario(tmp_path: Path, settings, extra_env: dict[str, str]) -> dict:
    data = settings.data_dir
    port, ui = free_port(), free_port()
    env = {**os.environ, "CASEWORK_DATA_DIR": str(data), "CASEWORK_EMBEDDED_PORT": str(port),
           "CASEWORK_EMBEDDED_UI_PORT": str(ui), "CASEWORK_HTTP_PORT": str(free_port()), "CASEWORK_LOG_FORMAT": "json", "PATH": f"{BIN}:{os.environ['PATH']}",
           **extra_env}
    log_path = tmp_path / "engine.log"  # the engine's own output, as an operator would keep it
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(BIN / "casework"), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while "worker_started" not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the engine did not start"
            time.sleep(0.2)
        a_cases, b_case, a_closed = [f"wex-{uuid.uuid4()}" for _ in range(2)], f"voss-{uuid.uuid4()}", f"wex-{uuid.uuid4()}"
        key = extra_env.get("CASEWORK_PAYLOAD_KEY")
        asyncio.run(drive(address, a_cases, b_case, a_closed, key))

        def casework(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(BIN / "casework"), "--address", address, *args], env=env,
                                  capture_output=True, text=True, timeout=120)

        refused = casework("forget-customer", "cust-wexcombe", "--actor", "agent:al")
        assert refused.returncode == 3 and "supervisors" in refused.stderr
        forgot = casework("forget-customer", "cust-wexcombe", "--actor", "supervisor:sup-sam",
                          "--reason", "erasure request", "--json")
        assert forgot.returncode == 0, forgot.stderr
        report = json.loads(forgot.stdout)
        assert sorted(report["case_ids"]) == sorted([*a_cases, a_closed])
        assert sorted(report["continued"]) == sorted(a_cases) and report["closed"] == [a_closed]
        seen = asyncio.run(after_forgetting(address, a_cases, b_case, key))
        deadline = time.monotonic() + 60
        while True:  # the worker's projection catches up with the store
            status = json.loads(casework("projections", "status", "--json").stdout)
            if status["events_behind"] == 0:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        rebuilt = casework("projections", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
    finally:
        proc.terminate()
        proc.wait(60)
    return {"report": report, "seen": seen, "a_cases": a_cases, "b_case": b_case, "a_closed": a_closed,
            "log": log_path, "proc": proc}


def check_workflows_and_stores(run: dict, settings, plain_histories: bool = True) -> None:
    seen = run["seen"]
    for cid in run["a_cases"]:
        state = seen["states"][cid]
        assert (state.customer.name, state.customer.contact, state.subject, state.description) == (FORGOTTEN,) * 4
        assert state.customer.id == "cust-wexcombe"
        for key, text in A.items():
            assert text.encode() not in seen["histories"][cid], f"{key} in the current run's history of {cid}"
    assert seen["states"][run["b_case"]].customer.name == B["name"]  # the other customer: untouched
    if plain_histories:  # the search sees plain payloads (encrypted by the payload codec otherwise)
        assert B["description"].encode() in seen["histories"][run["b_case"]]
    assert seen["noted"].notes_count == 2  # the note before, and the one after the hand-over
    store = open_case_store(settings)
    first = store.history(run["a_cases"][0])
    assert first[0].customer.name == FORGOTTEN and [e.text for e in first if e.type == "NoteAdded"] == [
        FORGOTTEN, "after forgetting"]  # a note given after the forgetting is kept (under a new key)
    assert store.history(run["b_case"])[0].description == B["description"]
    audit = store.forgotten()
    assert [(e.customer_id, e.actor.id, e.reason) for e in audit] == [("cust-wexcombe", "sup-sam", "erasure request")]


def test_a_forgotten_customer_is_found_in_no_file_of_a_sqlite_engine(tmp_path):
    settings = settings_for("sqlite", tmp_path / "data")  # keys made on first start, under data/keys
    run = run_engine_scenario(tmp_path, settings, {})
    check_workflows_and_stores(run, settings)
    data_files = files_under(settings.data_dir)
    names = {p.name for p in data_files}
    assert {"events.db", "reporting.db", "outbox.db", "keyring.db", "temporal.db", "temporal.log"} <= names
    # Files the engine made are its user's alone (the harness's own log is outside the data dir).
    loose = [f"{p} {oct(p.stat().st_mode & 0o777)}" for p in data_files if p.stat().st_mode & 0o077]
    loose += [f"{p} {oct(p.stat().st_mode & 0o777)}" for p in settings.data_dir.rglob("*")
              if p.is_dir() and p.stat().st_mode & 0o077]
    assert not loose, loose
    stores = [p for p in data_files if not p.name.startswith("temporal.db")]
    assert grep([*stores, run["log"]], A) == []
    assert grep(stores, {"id": "cust-wexcombe"})  # the search sees what is plaintext (the keyring's ids)
    assert grep([settings.data_dir / "events.db"], B) == []  # encrypted at rest, not only forgotten


def test_with_the_payload_codec_temporals_database_holds_no_personal_data(tmp_path):
    """Closed runs (before a continue-as-new, closed cases) keep their inputs in Temporal's database
    until the namespace's retention: with the payload codec on, only as ciphertext (docs/security-data.md)."""
    settings = settings_for("sqlite", tmp_path / "data")
    run = run_engine_scenario(tmp_path, settings, {"CASEWORK_PAYLOAD_KEY": new_key()})
    check_workflows_and_stores(run, settings, plain_histories=False)
    temporal = [p for p in files_under(settings.data_dir) if p.name.startswith("temporal.db")]
    assert temporal and grep(temporal, {**A, **B}) == []
    assert grep(temporal, {"workflow id": run["a_cases"][0]})  # the search sees what is plaintext (ids)


def test_a_forgotten_customer_is_found_in_no_file_of_a_postgresql_engine(tmp_path, postgres_server):
    settings = settings_for("postgres", tmp_path / "data", postgres_server)
    extra = {"CASEWORK_EVENT_STORE": "postgres", "CASEWORK_POSTGRES_HOST": settings.postgres_host,
             "CASEWORK_POSTGRES_PORT": str(settings.postgres_port), "CASEWORK_POSTGRES_USER": settings.postgres_user,
             "CASEWORK_POSTGRES_DBNAME": settings.postgres_dbname,
             "CASEWORK_STORE_CIPHER_KEYS": new_key(), "CASEWORK_KEYRING_MASTER_KEYS": new_key()}
    settings = settings.model_copy(update={"store_cipher_keys": [extra["CASEWORK_STORE_CIPHER_KEYS"]],
                                           "keyring_master_keys": [extra["CASEWORK_KEYRING_MASTER_KEYS"]]})
    run = run_engine_scenario(tmp_path, settings, extra)
    check_workflows_and_stores(run, settings)
    with psycopg.connect(host=settings.postgres_host, port=settings.postgres_port, user=settings.postgres_user,
                         dbname=settings.postgres_dbname, autocommit=True) as db:
        db.execute("CHECKPOINT")  # every page on disk, as well as in the WAL
        pgdata = Path(db.execute("SHOW data_directory").fetchone()[0])
    pg_files = files_under(pgdata.parent)  # the cluster: its data directory (pg_wal included) and its log
    assert any(p.parent.name == "pg_wal" for p in pg_files)
    # The search does see what is stored in plaintext (the keyring's pseudonymous customer ids).
    assert grep(pg_files, {"id": "cust-wexcombe"})
    stores = [p for p in files_under(settings.data_dir) if not p.name.startswith("temporal.db")]
    assert grep([*pg_files, *stores, run["log"]], A) == []
