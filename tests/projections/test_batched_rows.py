"""The batched projection writes the rows the domain's state gives after every single event.

The projection keeps a batch's cases in memory and writes each row once per batch. The oracle here
is the domain: each case's history replayed with `evolve`, one event at a time, every row the
state gives after each event upserted (or appended) into plain dicts, as a projection applying
events one by one would leave them. Cases are interleaved in the log and the batches cut through
their histories (and through a next-response clock's cycles); on SQLite and PostgreSQL.

The lifecycle fields' rules (domain.transitions) are the same code on both sides, so this holds the
batching, the memory and the rows, not those rules: tests/domain/test_field_rules.py and
test_lifecycle_fields_reachable.py hold them by hand-worked examples.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from casework.importer import import_log
from casework.importer.export import case_histories
from casework.policy import load_policy
from domain.lifecycle import CommandRefused, decide, evolve, replay, replay_on
from domain.commands import AttemptCallback
from domain.model import ENGINE, Category, Channel, Priority, Tier
from domain.personal import WITHHELD, scrub
from domain.store import CaseStore
from projections import dashboard
from projections.memory import as_plain, from_state, loads
from projections.rows import activity_row, case_row, clock_rows, escalation_row, follow_up_rows
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.importer import oracle
from tests.importer.test_bpic_import import chosen, write_csv
from tests.factory import AGENT, CUSTOMER, command, open_case
from tests.projections.history import write_history
from tests.projections.test_read_models import backend  # noqa: F401 - the (store, reporting env) fixture

STAFF = ("agent", "supervisor")
ZONE = "America/New_York"  # the dashboard's days: a zone with daylight saving, hours behind UTC
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
    return store, {**env, dashboard.ZONE_KEY: ZONE}, case_ids


def assert_equal_to_the_oracle(view, store: CaseStore, case_ids: list[str], old_layout: frozenset = frozenset()) -> None:
    """Every table the projection wrote equals what evolve, event by event, gives; and so does the
    memory it resumes from (each clock as the domain keeps it, the terms' calendar, the staff), but
    for the cases `old_layout` whose row is still the earlier version's."""
    want, memory = expected_rows(store, case_ids)
    for table, rows in want.items():
        got = {tuple(r[k] for k in KEYS[table]): r for r in view.query(f"SELECT * FROM {{{table}}}")}
        assert got.keys() == rows.keys(), table
        for key, row in rows.items():
            assert same(got[key], row), (table, key, got[key], row)
    totals = defaultdict(lambda: [0, set()])
    for row in want["agent_activity"].values():
        totals[(row["actor_id"], row["actor_role"])][0] += 1
        totals[(row["actor_id"], row["actor_role"])][1].add(row["case_id"])
    assert {(r["actor_id"], r["actor_role"]): (r["actions"], r["cases_touched"])
            for r in view.query("SELECT * FROM {agent_totals}")} == {
        who: (n, len(cases)) for who, (n, cases) in totals.items()}
    rows = {r["case_id"]: r["state"] for r in view.query("SELECT * FROM {case_state}")}
    assert rows.keys() == memory.keys()
    assert {cid for cid, state in rows.items() if loads(state) is None} == old_layout
    assert {cid: as_plain(loads(state)) for cid, state in rows.items() if cid not in old_layout} == {
        cid: m for cid, m in memory.items() if cid not in old_layout}
    # The dashboard's days (kept in the zone of the environment): the cases rows (held equal to
    # evolve's above) counted naively, day by day in that zone.
    from tests.web.test_console_figures_oracle import assert_days_equal_the_cases
    assert_days_equal_the_cases(view, ZoneInfo(view.dashboard_zone))


@pytest.mark.parametrize("batch_size", [1, 13, 100_000])
def test_batched_rows_equal_the_rows_of_evolve_event_by_event(interleaved, batch_size):
    store, env, case_ids = interleaved
    want, _ = expected_rows(store, case_ids)
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
    assert_equal_to_the_oracle(view, store, case_ids)


@pytest.mark.parametrize("batch_size", [7, 100_000])
def test_an_imported_history_projects_to_the_rows_of_evolve(backend, tmp_path, batch_size):  # noqa: F811
    """A store the importer wrote from the shipped BPIC 2013 log (60 traces, reopens and waits
    first), its cases interleaved in the log."""
    store, env = backend
    log = tmp_path / "bpic.csv"
    write_csv(log, chosen(oracle.traces(), 60))
    scratch = sqlite_store(tmp_path / "imported.db")
    summary = import_log(log, "bpic2013", scratch, load_policy())
    case_ids = [history[0].case_id for history in case_histories(scratch)]
    assert summary.imported == 60 and len(case_ids) == 60 + summary.follow_ups  # and the follow-ups it opened
    interleave(scratch, store, case_ids)

    view = open_view({**env, dashboard.ZONE_KEY: ZONE})
    assert ReportProjection(store, view, batch_size=batch_size).catch_up() == store.recorder.max_notification_id()
    assert_equal_to_the_oracle(view, store, case_ids)
    assert any(r["reopen_count"] for r in view.query("SELECT reopen_count FROM {cases}"))


def test_memories_of_the_earlier_layout_are_read_and_carried_on(interleaved):
    """case_state rows as earlier versions wrote them (the whole domain state, scrubbed, as JSON):
    the projection reads them (the staff from agent_activity) and carries on to the oracle's rows."""
    store, env, case_ids = interleaved
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=50)
    half = store.recorder.max_notification_id() // 2
    projection.catch_up(until=half)
    position = projection.position()
    applied = Counter(fact.case_id for fact, _ in projection._next(0, position) if fact is not None)
    with view.datastore.transaction(commit=True) as c:
        for cid, n in applied.items():
            old = scrub(replay(store.history(cid)[:n]), WITHHELD).model_dump_json()
            c.execute(view.sql(f"UPDATE {view.table('case_state')} SET state = ? WHERE case_id = ?"), [old, cid])
    assert all(loads(r["state"]) is None for r in view.query("SELECT state FROM {case_state}"))
    # A note on every open case, by someone who acted on it before if anyone did (not a case they
    # touch anew), so most cases carry on from a row of the old layout.
    later = {fact.case_id for fact, _ in projection._next(position, 10**9) if fact is not None}
    noted = set()
    for cid in applied:
        state = store.state(cid)
        staff = next((e.actor for e in store.history(cid) if e.actor.role.value in STAFF), AGENT)
        try:
            events = decide(state, command("add_note", staff, text="after the upgrade",
                                           occurred_at=state.last_fact_at + timedelta(minutes=1)),
                            state.last_fact_at + timedelta(minutes=2))
        except CommandRefused:
            continue
        store.append(events[0].command_id, events)
        noted.add(cid)
    assert len(noted) > len(applied) / 2

    projection.catch_up()
    assert_equal_to_the_oracle(view, store, case_ids, old_layout=frozenset(set(applied) - noted - later))
