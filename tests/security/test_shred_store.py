"""Crypto-shredding in the stores: a forgotten customer's fields read "[forgotten]" in the event store
and the outbox, the reporting tables never hold them, the audit says who did it; others stay readable."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from activities.outbox import OutboxFollower, open_outbox
from casework.config import outbox_env, reporting_env
from casework.forget import ForgetRefused, forget_customer
from casework.stores import open_case_store
from domain.model import Actor
from domain.personal import FORGOTTEN
from projections.runner import ReportProjection, open_view, rebuild
from tests.security.shred_helpers import SUPERVISOR, book, new_key, note, open_case, pg_dump_bytes, settings_for

SECRETS_A = ["Ottilie Vandersnoot", "ottilie@vandersnoot.example", "boiler leaks behind the pantry",
             "door code 9317-ZX", "call her daughter Mirabel"]
SECRETS_B = ["Bartholomew Quince", "quince@orchard.example", "router blinks amber"]


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, tmp_path):
    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    return settings_for(request.param, tmp_path / "data", server, store_cipher_keys=[new_key()],
                        keyring_master_keys=[new_key()])


def stored_bytes(settings) -> bytes:
    if settings.event_store == "postgres":
        return pg_dump_bytes(settings)
    return b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())


def drive(store) -> None:
    v = open_case(store, "case-a1", "cust-a", SECRETS_A[0], SECRETS_A[2], contact=SECRETS_A[1])
    v = book(store, "case-a1", SECRETS_A[3], v)
    note(store, "case-a1", SECRETS_A[4], v)
    open_case(store, "case-a2", "cust-a", SECRETS_A[0], "second case of A")
    v = open_case(store, "case-b1", "cust-b", SECRETS_B[0], SECRETS_B[2], contact=SECRETS_B[1])
    book(store, "case-b1", "Orchard Lane 3", v)


def test_forgetting_a_customer_leaves_their_history_unreadable_and_the_others_readable(settings):
    store = open_case_store(settings)
    drive(store)
    view = open_view(reporting_env(settings))
    projection = ReportProjection(store, view)
    projection.catch_up()
    outbox = open_outbox(outbox_env(settings))
    OutboxFollower(store, outbox).catch_up()

    # Before anything is forgotten, no store holds a personal field in plaintext.
    everything = stored_bytes(settings)
    for secret in SECRETS_A + SECRETS_B:
        assert secret.encode() not in everything, secret
    bodies = {b.body["case"]["id"]: b.body["event"] for b in outbox.due(time.time() + 1, 10)}
    assert SECRETS_A[3] in bodies["case-a1"]["summary"] and bodies["case-a1"]["details"]["appointment"]["place"] == SECRETS_A[3]

    report = asyncio.run(forget_customer(settings, None, "cust-a", SUPERVISOR, reason="erasure request 7", store=store))
    assert report.case_ids == ["case-a1", "case-a2"] and len(report.key_ids) == 1

    fresh = open_case_store(settings)  # what any process reads from now on
    a = fresh.history("case-a1")
    assert (a[0].customer.name, a[0].customer.contact, a[0].subject, a[0].description) == (FORGOTTEN,) * 4
    booked = next(e for e in a if e.type == "AppointmentBooked")
    assert (booked.appointment.place, booked.appointment.need) == (FORGOTTEN, FORGOTTEN)
    assert next(e for e in a if e.type == "NoteAdded").text == FORGOTTEN
    assert [e.type for e in a] == [e.type for e in store.history("case-a1")]  # the history itself is kept
    assert fresh.state("case-a1").customer.id == "cust-a" and fresh.state("case-a1").customer.name == FORGOTTEN
    b = fresh.history("case-b1")
    assert (b[0].customer.name, b[0].customer.contact, b[0].description) == (SECRETS_B[0], SECRETS_B[1], SECRETS_B[2])

    audit = fresh.forgotten()
    assert [(e.customer_id, e.actor, e.case_ids, e.reason) for e in audit] == [
        ("cust-a", SUPERVISOR, ["case-a1", "case-a2"], "erasure request 7")]

    due = {b.body["case"]["id"]: b.body for b in outbox.due(time.time() + 1, 10)}
    assert due["case-a1"]["case"]["subject"] == FORGOTTEN and due["case-b1"]["case"]["subject"] != FORGOTTEN
    bodies = {case_id: body["event"] for case_id, body in due.items()}
    assert bodies["case-a1"]["summary"] == FORGOTTEN
    assert bodies["case-a1"]["details"]["appointment"]["place"] == FORGOTTEN
    assert bodies["case-b1"]["details"]["appointment"]["place"] == "Orchard Lane 3"

    # The reporting tables, live and rebuilt (the audit entry moves the position and adds nothing).
    projection.catch_up()
    assert projection.lag().events_behind == 0
    assert rebuild(fresh, reporting_env(settings)) == fresh.recorder.max_notification_id()
    rows = view.query("SELECT * FROM {cases} ORDER BY case_id")
    assert [(r["case_id"], r["customer_id"]) for r in rows] == [
        ("case-a1", "cust-a"), ("case-a2", "cust-a"), ("case-b1", "cust-b")]
    # The projection's memory of each case keeps no personal field at all (projections/memory.py).
    states = [json.loads(r["state"]) for r in view.query("SELECT state FROM {case_state}")]
    assert len(states) == 3 and not any({"customer", "subject", "description", "solution"} & s.keys() for s in states)
    assert not any(secret in json.dumps(states) for secret in SECRETS_A + SECRETS_B)

    everything = stored_bytes(settings)
    for secret in SECRETS_A + SECRETS_B:
        assert secret.encode() not in everything, secret


def test_only_supervisors_forget_and_an_unencrypted_store_cannot(tmp_path):
    settings = settings_for("sqlite", tmp_path / "d", store_cipher_keys=[new_key()], keyring_master_keys=[new_key()])
    with pytest.raises(ForgetRefused, match="supervisors"):
        asyncio.run(forget_customer(settings, None, "cust-a", Actor(id="al", role="agent")))
    plain = settings.model_copy(update={"store_encryption": False, "data_dir": tmp_path / "plain"})
    with pytest.raises(ForgetRefused, match="not encrypted"):
        asyncio.run(forget_customer(plain, None, "cust-a", SUPERVISOR))


def test_an_old_reporting_table_loses_its_customer_name_column_when_the_view_opens(settings):
    env = reporting_env(settings)
    view = open_view(env)
    with view._writing() as c:
        current = view._columns(c, "cases")
        # The cases table as earlier versions made it: with the customer's name.
        c.execute(f"ALTER TABLE {view.table('cases')} ADD COLUMN customer_name TEXT NOT NULL DEFAULT 'Old Name'")
    with view._writing() as c:
        assert view._columns(c, "cases") == current | {"customer_name"}
    reopened = open_view(env)
    with reopened._writing() as c:
        assert reopened._columns(c, "cases") == current and "customer_id" in current
