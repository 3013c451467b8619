"""The reporting tables and reports, on SQLite and PostgreSQL, against figures taken from the events."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from statistics import quantiles

import pytest
from eventsourcing.persistence import IntegrityError

from casework.config import sqlite_env
from projections import reports
from projections.runner import ReportProjection, open_view, rebuild
from tests.conftest import sqlite_store
from tests.pg import create_database
from tests.projections.history import figures_from_events, p50, write_history


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    """(event store, reporting environment) on one backend."""
    if request.param == "sqlite":
        return sqlite_store(tmp_path / "events.db"), sqlite_env(tmp_path / "reporting.db")
    server = request.getfixturevalue("postgres_server")
    name = f"reports_{uuid.uuid4().hex[:10]}"
    create_database(server, name)
    env = {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": name,
           "POSTGRES_HOST": server["host"], "POSTGRES_PORT": server["port"], "POSTGRES_USER": server["user"],
           "POSTGRES_PASSWORD": server["password"]}
    from domain.store import CaseStore
    return CaseStore(env=env), {**env, "POSTGRES_SCHEMA": "reporting"}


@pytest.fixture
def projected(backend):
    store, env = backend
    case_ids = write_history(store, cases=60)
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=37)  # batches that split cases
    projection.catch_up()
    return store, env, view, projection, case_ids


def test_every_event_is_applied_once_and_the_rows_match_the_events(projected):
    store, _, view, projection, case_ids = projected
    want = figures_from_events(store, case_ids)
    lag = projection.lag()
    assert lag.events_behind == 0 and lag.position == lag.head > 0

    rows = {r["case_id"]: r for r in view.query("SELECT * FROM {cases}")}
    assert set(rows) == set(case_ids)
    for cid in case_ids:
        row = rows[cid]
        assert row["stage"] == want["stage"][cid], cid
        assert (row["reopen_count"], row["clarification_rounds"]) == (want["reopens"][cid], want["rounds"][cid])
        breached = [c for c in ("first_response", "next_response", "resolution") if row[f"{c}_breached"]]
        assert breached == want["breached"][cid], cid
        clocks = view.query("SELECT clock, breached FROM {sla_clocks} WHERE case_id = ?", [cid])
        assert sorted(c["clock"] for c in clocks if c["breached"]) == want["breached"][cid]

    escalated = view.query("SELECT level, cause, COUNT(*) AS n FROM {escalations} WHERE kind = 'escalated' "
                           "GROUP BY level, cause")
    assert {(r["level"], r["cause"]): r["n"] for r in escalated} == dict(want["escalations"])
    activity = view.query("SELECT actor_id, COUNT(*) AS n FROM {agent_activity} GROUP BY actor_id")
    assert {r["actor_id"]: r["n"] for r in activity} == dict(want["activity"])


def test_reports_agree_with_figures_computed_from_the_events(projected):
    store, _, view, _, case_ids = projected
    want = figures_from_events(store, case_ids)

    sla = {r["priority"]: r for r in reports.sla_compliance(view, "priority")}
    for priority, row in sla.items():
        cases = [c for c in case_ids if want["priority"][c] == priority]
        clean = [c for c in cases if not want["breached"][c]]
        assert row["cases"] == len(cases)
        assert row["compliance_pct"] == round(100.0 * len(clean) / len(cases), 1)

    totals = reports.outcomes(view, "tier")
    assert sum(r["closed"] for r in totals) == want["closed"]
    assert sum(r["first_contact_resolved"] for r in totals) == want["fcr"]
    assert sum(r["reopened"] for r in totals) == want["reopened_cases"]

    times = {r["priority"]: r for r in reports.response_times(view)}
    for priority, hours in want["first_response_hours"].items():
        assert times[priority]["first_response_hours_p50"] == round(p50(hours), 2)

    backlog = {r["stage"]: r["total"] for r in reports.backlog(view)}
    open_stages = [s for s in want["stage"].values() if s != "closed"]
    assert backlog == {s: open_stages.count(s) for s in set(open_stages)}
    assert sum(r["cases"] for r in reports.complaints(view)) == len(case_ids)


def test_times_percentiles_by_every_grouping_equal_python_quantiles_over_the_rows(projected):
    _, _, view, _, _ = projected
    rows = view.query("SELECT * FROM {cases}")
    month = {r["case_id"]: r["opened_at"][:7] for r in rows}
    for by, column in (("priority", "priority"), ("team", "team"), ("agent", "assignee"), ("tier", "tier"),
                       ("period", None)):
        groups: dict = {}
        for r in rows:
            groups.setdefault(month[r["case_id"]] if column is None else r[column], []).append(r)
        want = []
        for grp, items in sorted(groups.items(), key=lambda kv: str(kv[0])):
            row = {by: grp, "cases": len(items)}
            for col in reports.DURATIONS:
                values = [i[col] for i in items if i[col] is not None]
                cuts = ([values[0]] * 99 if len(values) == 1 else
                        quantiles(values, n=100, method="inclusive") if values else [None] * 99)
                for p in (50, 90, 95):
                    value = cuts[p - 1]
                    row[f"{col.replace('_seconds', '_hours')}_p{p}"] = None if value is None else round(value / 3600, 2)
            want.append(row)
        assert reports.response_times(view, by) == want, by


def test_the_agents_report_counts_actions_and_cases_touched_from_the_events(projected):
    store, _, view, _, case_ids = projected
    actions, touched, open_assigned = Counter(), defaultdict(set), Counter()
    for cid in case_ids:
        for e in store.history(cid):
            if e.actor.role.value in ("agent", "supervisor"):
                actions[(e.actor.id, e.actor.role.value)] += 1
                touched[(e.actor.id, e.actor.role.value)].add(cid)
        state = store.state(cid)
        if state.closed_at is None and state.assignee is not None:
            open_assigned[state.assignee] += 1
    got = reports.agents(view)
    assert [(r["agent"], r["role"]) for r in got] == sorted(actions)
    for r in got:
        key = (r["agent"], r["role"])
        assert (r["actions"], r["cases_touched"], r["open_assigned"]) == (
            actions[key], len(touched[key]), open_assigned[r["agent"]]), key
    assert len(actions) > 1 and any(len(cases) > 1 for cases in touched.values())


def test_a_rebuild_into_fresh_tables_equals_the_live_ones(projected):
    store, env, view, projection, _ = projected
    tables = ("cases", "sla_clocks", "escalations", "agent_activity", "case_state", "agent_totals")
    order = {"cases": "case_id", "sla_clocks": "case_id, clock", "escalations": "case_id, seq",
             "agent_activity": "case_id, seq", "case_state": "case_id", "agent_totals": "actor_id, actor_role"}
    live = {t: view.query(f"SELECT * FROM {{{t}}} ORDER BY {order[t]}") for t in tables}

    applied = rebuild(store, env)

    assert applied == projection.lag().head
    assert {t: view.query(f"SELECT * FROM {{{t}}} ORDER BY {order[t]}") for t in tables} == live
    assert projection.lag().events_behind == 0
    write_history(store, cases=3, seed=99)  # the live runner carries on after the swap
    projection.catch_up()
    assert len(view.query("SELECT case_id FROM {cases}")) == len(live["cases"]) + 3


def test_replaying_an_applied_batch_is_refused_and_counts_nothing_twice(projected):
    store, _, view, projection, _ = projected
    def snapshot():
        return [view.query(f"SELECT * FROM {{{t}}} ORDER BY 1, 2") for t in ("cases", "agent_activity")]

    before = snapshot()
    batch = projection._next(0, 10)
    with pytest.raises(IntegrityError):  # the rows or the tracking position refuse it; all rolls back
        view.apply_batch(batch, projection.upstream, after=0)
    assert snapshot() == before


LATER = datetime(2100, 1, 1, tzinfo=UTC)


def _index_names(view) -> set[str]:
    if view.placeholder == "?":
        return {r["name"] for r in view.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return {r["indexname"] for r in view.query("SELECT indexname FROM pg_indexes WHERE schemaname = %s",
                                               [view.datastore.schema])}


def test_an_index_an_earlier_version_made_is_dropped_when_the_view_opens_and_reports_still_read(projected):
    store, env, view, _, _ = projected
    # The indexes earlier versions made: one the leading columns of a wider one, one no report read.
    with view._writing() as c:
        c.execute(f"CREATE INDEX activity_actor ON {view.table('agent_activity')} (actor_id, at)")
        c.execute(f"CREATE INDEX clocks_due ON {view.table('sla_clocks')} (state, due)")
        # Of every clock, where their partial successors hold the running or next-response ones only.
        c.execute(f"CREATE INDEX clocks_running ON {view.table('sla_clocks')} (state, due, case_id, clock, breached)")
        c.execute(f"CREATE INDEX clocks_clock ON {view.table('sla_clocks')} (clock, case_id, state, breached)")
        c.execute(f"CREATE INDEX clocks_case ON {view.table('sla_clocks')} (case_id, state, due)")
        # Two copies of a case's columns by opened_at, where cases_figures is one.
        c.execute(f"CREATE INDEX cases_report ON {view.table('cases')} (opened_at, priority, team, closed_at)")
        c.execute(f"CREATE INDEX cases_dashboard ON {view.table('cases')} (opened_at, team, resolution_seconds)")
    retired = {"clocks_due", "activity_actor", "clocks_running", "clocks_clock", "clocks_case", "cases_report",
               "cases_dashboard"}
    assert retired <= _index_names(view)
    before = {name: fn(view) for name, fn in reports.REPORTS.items()}
    at_risk_before = reports.at_risk(view, now=LATER)  # every running clock, due by then
    assert at_risk_before

    reopened = open_view(env)

    names = _index_names(reopened)
    assert not names & retired
    assert {"cases_opened", "cases_figures", "running_by_due", "running_by_case", "next_response_cycles"} <= names
    assert {name: fn(reopened) for name, fn in reports.REPORTS.items()} == before
    assert reports.at_risk(reopened, now=LATER) == at_risk_before
