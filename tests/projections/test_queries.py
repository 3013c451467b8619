"""The case listing (projections/queries.py) and the sealed subjects (projections/subjects.py) on SQLite
and PostgreSQL: every filter and the cursor against a plain Python filter over the projected rows."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from casework.config import sqlite_env
from casework.keyring import Keyring
from domain.model import Actor
from domain.store import CaseStore, Forgotten
from projections import subjects
from projections.queries import BadCursor, CaseFilter, list_cases
from projections.rows import iso
from projections.runner import ReportProjection, open_view
from tests.pg import create_database
from casework.history import START, write_history

NOW = START + timedelta(days=30)


@pytest.fixture(params=["sqlite", "postgres"])
def projected(request, tmp_path):
    keyring = Keyring.sqlite(tmp_path / "keyring.db", [os.urandom(32)])
    if request.param == "sqlite":
        store, env = CaseStore(env=sqlite_env(tmp_path / "events.db"), sealer=keyring), sqlite_env(tmp_path / "r.db")
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"queries_{uuid.uuid4().hex[:10]}"
        create_database(server, name)
        pg = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": name, "POSTGRES_HOST": server["host"],
              "POSTGRES_PORT": server["port"], "POSTGRES_USER": server["user"], "POSTGRES_PASSWORD": server["password"]}
        store, env = CaseStore(env=pg, sealer=keyring), {**pg, "POSTGRES_SCHEMA": "reporting"}
    ids = write_history(store, cases=60)
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=41)
    projection.catch_up()
    return store, keyring, view, projection, ids


def walk(view, f: CaseFilter, keyring, limit: int) -> list[str]:
    out, cursor = [], None
    for _ in range(200):
        page = list_cases(view, f, limit=limit, cursor=cursor, now=NOW,
                          subject_of=lambda cid, token: subjects.unseal(keyring, cid, token))
        assert len(page.rows) <= limit
        out += [r["case_id"] for r in page.rows]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor
    raise AssertionError("endless cursor")


def oracle(view, ids: list[str], keep) -> list[str]:
    subject = {cid: f"Synthetic case {i}" for i, cid in enumerate(ids)}  # as write_history names them
    clocks = view.query("SELECT * FROM {sla_clocks}")
    rows = [r for r in view.query("SELECT * FROM {cases}")
            if keep(r, [k for k in clocks if k["case_id"] == r["case_id"]], subject[r["case_id"]])]
    return [r["case_id"] for r in sorted(rows, key=lambda r: (r["opened_at"], r["case_id"]), reverse=True)]


def test_every_filter_and_page_size_against_a_plain_filter(projected):
    _, keyring, view, _, ids = projected
    horizon = iso(NOW + timedelta(hours=10))
    cases = [
        (CaseFilter(), lambda r, k, s: True),
        (CaseFilter(stage=["closed"]), lambda r, k, s: r["stage"] == "closed"),
        (CaseFilter(stage=["intake", "response"]), lambda r, k, s: r["stage"] in ("intake", "response")),
        (CaseFilter(team="east"), lambda r, k, s: r["team"] == "east"),
        (CaseFilter(priority=["urgent", "low"], team="west"),
         lambda r, k, s: r["priority"] in ("urgent", "low") and r["team"] == "west"),
        (CaseFilter(category=["complaint"]), lambda r, k, s: r["category"] == "complaint"),
        (CaseFilter(breached=True), lambda r, k, s: any(c["breached"] for c in k)),
        (CaseFilter(breached=False, stage=["closed"]),
         lambda r, k, s: not any(c["breached"] for c in k) and r["stage"] == "closed"),
        (CaseFilter(at_risk_within_hours=10), lambda r, k, s: r["stage"] != "closed" and any(
            c["state"] == "running" and not c["breached"] and c["due"] and c["due"] <= horizon for c in k)),
        (CaseFilter(text="CASE 1"), lambda r, k, s: "case 1" in s.lower()),
        (CaseFilter(text="case 2", team="east"), lambda r, k, s: "case 2" in s.lower() and r["team"] == "east"),
        (CaseFilter(customer_id="c7"), lambda r, k, s: r["customer_id"] == "c7"),
    ]
    for f, keep in cases:
        want = oracle(view, ids, keep)
        for limit in (1, 7, 100):
            assert walk(view, f, keyring, limit) == want, (f, limit)
    # By hand: the text filter finds case 1 and cases 10-19, and no more.
    assert sorted(walk(view, CaseFilter(text="case 1"), keyring, 5)) == sorted([ids[1], *ids[10:20]])
    # The filters that matter have something to find (so the comparisons above are not vacuous).
    for f in (CaseFilter(breached=True), CaseFilter(at_risk_within_hours=10), CaseFilter(stage=["closed"])):
        assert walk(view, f, keyring, 50), f
    with pytest.raises(BadCursor):
        list_cases(view, CaseFilter(), limit=5, cursor="garbage!", now=NOW, subject_of=lambda c, t: None)


def test_subjects_are_sealed_and_a_forgetting_erases_them(projected):
    store, keyring, view, projection, ids = projected
    rows = {r["case_id"]: r for r in view.query("SELECT * FROM {case_subjects}")}
    assert set(rows) == set(ids)
    assert all(r["subject"].startswith("enc1:") and "Synthetic" not in r["subject"] for r in rows.values())
    assert subjects.unseal(keyring, ids[3], rows[ids[3]]["subject"]) == "Synthetic case 3"
    result = keyring.forget("c3", "sam")
    store.record_forgotten(Forgotten(customer_id="c3", actor=Actor(id="sam", role="supervisor"),
                                     at=datetime.now(UTC), key_ids=result.key_ids, case_ids=result.case_ids))
    assert subjects.unseal(keyring, ids[3], rows[ids[3]]["subject"]) is None  # unreadable at once
    projection.catch_up()
    left = {r["case_id"] for r in view.query("SELECT case_id FROM {case_subjects}")}
    assert left == set(ids) - {ids[3]}
    assert ids[3] not in walk(view, CaseFilter(text="case 3"), keyring, 10)
    assert ids[30] in walk(view, CaseFilter(text="case 3"), keyring, 10)
