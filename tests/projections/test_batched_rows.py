"""The batched projection writes the rows the domain's state gives after every single event.

The projection keeps a batch's cases in memory and writes each row once per batch. The oracle here
is the domain: each case's history replayed with `evolve`, one event at a time, every row the
state gives after each event upserted (or appended) into plain dicts, as a projection applying
events one by one would leave them. Cases are interleaved in the log and the batches cut through
their histories (and through a next-response clock's cycles); on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from casework.policy import load_policy
from domain.lifecycle import decide, evolve, replay_on
from domain.commands import AttemptCallback
from domain.model import ENGINE, CaseState, Category, Channel, Priority, Tier
from domain.store import CaseStore
from projections.memory import as_plain, from_state, loads
from projections.rows import activity_row, case_row, clock_rows, escalation_row, follow_up_rows
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.factory import CUSTOMER, command, open_case
from tests.projections.history import write_history
from tests.projections.test_read_models import backend  # noqa: F401 - the (store, reporting env) fixture

STAFF = ("agent", "supervisor")
KEYS = {"cases": ("case_id",), "sla_clocks": ("case_id", "clock", "cycle"), "escalations": ("case_id", "seq"),
        "agent_activity": ("case_id", "seq"), "callbacks": ("case_id", "attempt", "at"),
        "surveys": ("case_id", "round"), "survey_scores": ("case_id", "round", "dimension")}


def interleave(source: CaseStore, target: CaseStore, case_ids: list[str]) -> None:
    """Append the cases' commands to `target` round robin, so each case's events are spread out."""
    commands = []
    for cid in case_ids:
        history = source.history(cid)
        commands.append([list(g) for _, g in itertools.groupby(history, key=lambda e: e.command_id)])
    for round_ in itertools.zip_longest(*commands):
        for events in round_:
            if events:
                target.append(events[0].command_id, events)


def expected_rows(store: CaseStore, case_ids: list[str]) -> tuple[dict, dict]:
    """Every table's rows, keyed, from evolve one event at a time; and the projection's memory."""
    tables: dict[str, dict] = defaultdict(dict)
    memory = {}
    for cid in case_ids:
        state = None
        for event in store.history(cid):
            state = evolve(state, event)
            tables["cases"][(cid,)] = case_row(state, event)
            for row in clock_rows(state, event.at):
                tables["sla_clocks"][(cid, row["clock"], row["cycle"])] = row
            appended = [("escalations", escalation_row(state, event)), ("agent_activity", activity_row(state, event)),
                        *follow_up_rows(state, event)]
            for table, row in appended:
                if row is not None:
                    key = tuple(row[k] for k in KEYS[table])
                    assert key not in tables[table], (table, key)
                    tables[table][key] = row
        staff = [(e.actor.id, e.actor.role.value) for e in store.history(cid) if e.actor.role.value in STAFF]
        memory[cid] = as_plain(from_state(state, staff))
    return tables, memory


def write_reply_cycles(store: CaseStore, cases: int) -> list[str]:
    """Cases whose customer writes back three times after the first response: next-response cycles
    1, 2 and 3, some answered late (breached), some in time (write_history makes none)."""
    terms = load_policy(None).terms_for(Priority.urgent, Tier.C, Category.fault, Channel.email)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    ids = []
    for i in range(cases):
        steps = [open_case(case_id=f"cycles-{i}", priority="urgent", occurred_at=t0),
                 command("respond", message="on it", occurred_at=t0 + timedelta(minutes=5))]
        at = t0 + timedelta(minutes=5)
        for n in range(3):
            at += timedelta(minutes=5)
            steps.append(command("record_customer_reply", CUSTOMER, message="still down", occurred_at=at))
            at += timedelta(minutes=10 + 25 * ((i + n) % 3))  # due after 30 minutes: some late
            steps.append(command("respond", message="sorry", occurred_at=at))
        # Then a solution and follow-up: the engine's callbacks while the customer is silent, and the customer's confirmation with a survey.
        steps += [command("propose_solution", summary="Fixed", occurred_at=at + timedelta(minutes=5)),
                  command("start_follow_up", occurred_at=at + timedelta(minutes=10))]
        at += timedelta(minutes=10)
        state = None
        for cmd in steps:
            events = decide(state, cmd, at + timedelta(hours=1), terms if state is None else None)
            store.append(cmd.command_id, events)
            state = replay_on(state, events)
        now = at
        for _ in range(i % 3):  # the engine's ticks when a callback falls due
            if state.callback_due is None:
                break
            now = state.callback_due
            events = decide(state, AttemptCallback(command_id=str(uuid.uuid4()), actor=ENGINE), now)
            if events:
                store.append(events[0].command_id, events)
                state = replay_on(state, events)
        if state.stage.value != "closed":
            confirm = command("confirm_solution", CUSTOMER, occurred_at=now + timedelta(hours=1),
                              survey={"scale": "1-5", "scores": {"response_speed": 4, "attitude": 5}})
            events = decide(state, confirm, now + timedelta(hours=1))
            store.append(confirm.command_id, events)
        ids.append(f"cycles-{i}")
    return ids


def same(got: dict, want: dict) -> bool:
    """Equal rows; floats to 6 significant digits (PostgreSQL's REAL is a 4-byte float)."""
    return got.keys() == want.keys() and all(
        math.isclose(got[k], v, rel_tol=1e-6) if isinstance(v, float) and got[k] is not None else got[k] == v
        for k, v in want.items())


@pytest.fixture
def interleaved(backend, tmp_path):  # noqa: F811
    store, env = backend
    scratch = sqlite_store(tmp_path / "scratch.db")
    case_ids = write_history(scratch, cases=40, seed=11) + write_reply_cycles(scratch, cases=4)
    interleave(scratch, store, case_ids)
    return store, env, case_ids


@pytest.mark.parametrize("batch_size", [1, 13, 100_000])
def test_batched_rows_equal_the_rows_of_evolve_event_by_event(interleaved, batch_size):
    store, env, case_ids = interleaved
    want, memory = expected_rows(store, case_ids)
    # What the histories must exercise for this to test anything: cases split across batches, a
    # case's later next-response cycle starting after an earlier one, appended rows of every kind.
    cycles = defaultdict(set)
    for cid, clock, cycle in want["sla_clocks"]:
        cycles[(cid, clock)].add(cycle)
    assert any(len(c) > 1 for c in cycles.values())
    assert {t for t in KEYS if not want[t]} == set()

    view = open_view(env, prefix=f"b{batch_size}_")
    projection = ReportProjection(store, view, batch_size=batch_size, upstream=f"oracle-{batch_size}")
    assert projection.catch_up() == store.recorder.max_notification_id()

    for table, rows in want.items():
        got = {tuple(r[k] for k in KEYS[table]): r for r in view.query(f"SELECT * FROM {{{table}}}")}
        assert got.keys() == rows.keys(), table
        for key, row in rows.items():
            assert same(got[key], row), (table, key, got[key], row)
    # The memory it resumes from: each clock as the domain keeps it, the terms' calendar, the staff.
    got_memory = {r["case_id"]: as_plain(loads(r["state"])) for r in view.query("SELECT * FROM {case_state}")}
    assert got_memory == memory
