"""The shipped BPIC 2013 log imported whole through the BPIC mapping: every trace imported, nothing
refused, and the read models' figures equal to figures computed straight from the CSV
(tests/importer/oracle.py: counts, reopens, clarification rounds, first-response and resolution
business times on the shipped calendar)."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from casework.config import sqlite_env
from casework.importer import import_log
from casework.policy import load_policy
from projections import reports
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.importer import oracle


def chosen(traces: dict, n: int = 300) -> dict:
    """A deterministic subset with the log's loops first: every reopened trace, then traces with a
    wait, then the rest, in file order."""
    reopened = [k for k, rows in traces.items() if oracle.reopens(rows)]
    waited = [k for k, rows in traces.items() if k not in reopened and oracle.clarification_rounds(rows)]
    plain = [k for k in traces if k not in reopened and k not in waited]
    keys = set((reopened + waited[:n // 3] + plain)[:n])
    return {k: rows for k, rows in traces.items() if k in keys}


def write_csv(path, traces: dict) -> None:
    with open(oracle.DATA, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, header)
        out.writeheader()
        for rows in traces.values():
            out.writerows(rows)


# The whole log takes minutes on the 2-core test machine (import and projection): the default run
# imports 300 chosen traces, `-m slow` the whole log.
@pytest.fixture(scope="module", params=["subset", pytest.param("whole", marks=pytest.mark.slow)])
def imported(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bpic")
    traces = oracle.traces()
    log = oracle.DATA
    if request.param == "subset":
        traces, log = chosen(traces), tmp / "bpic-subset.csv"
        write_csv(log, traces)
    store = sqlite_store(tmp / "events.db")
    summary = import_log(log, "bpic2013", store, load_policy())
    view = open_view(sqlite_env(tmp / "reporting.db"))
    ReportProjection(store, view, batch_size=2000).catch_up()
    cases = {r["external_id"]: r for r in view.query("SELECT * FROM {cases}")}
    return traces, summary, store, view, cases


def test_every_trace_is_imported_and_nothing_is_refused(imported):
    traces, summary, store, _, cases = imported
    n = len(traces)
    assert n in (300, 1487)  # 1487: the data set's README
    assert (summary.traces, summary.imported, summary.already) == (n, n, 0)
    assert summary.refused == [] and summary.not_imported == []
    assert summary.rows == sum(map(len, traces.values())) and summary.closed == n and summary.open_case_ids == []
    assert set(cases) == set(traces)
    assert store.recorder.max_notification_id() == summary.events


def test_counts_by_priority_stage_and_month_match_the_csv(imported):
    traces, _, _, view, cases = imported
    by_priority = Counter(oracle.PRIORITY[rows[0]["impact"]] for rows in traces.values())
    assert {r["priority"]: r["cases"] for r in reports.sla_compliance(view, "priority")} == dict(by_priority)
    assert Counter(r["stage"] for r in cases.values()) == {"closed": len(traces)}
    assert Counter(r["closure_reason"] for r in cases.values()) == {"resolved": len(traces)}
    months = Counter()
    for r in reports.complaints(view):
        months[r["month"]] += r["cases"]
    assert months == Counter(oracle.at(rows[0]).strftime("%Y-%m") for rows in traces.values())


def test_reopens_and_clarification_rounds_match_the_csv(imported):
    traces, _, _, view, cases = imported
    want = {k: oracle.case_figures(rows) for k, rows in traces.items()}
    assert sum(f["reopen_count"] for f in want.values()) > 50  # the log's loops are exercised
    for key, row in cases.items():
        assert (row["reopen_count"], row["clarification_rounds"]) == (
            want[key]["reopen_count"], want[key]["clarification_rounds"]), key
    outcomes = reports.outcomes(view, "tier")
    assert [r["closed"] for r in outcomes] == [len(traces)]  # one tier: every customer is tier C
    reopened = sum(1 for f in want.values() if f["reopen_count"])
    assert outcomes[0]["reopened"] == reopened
    assert outcomes[0]["reopen_rate_pct"] == round(100 * reopened / len(traces), 1)
    first_contact = sum(1 for f in want.values() if not f["reopen_count"] and not f["clarification_rounds"])
    assert sum(r["first_contact_resolved"] for r in outcomes) == first_contact


def test_opening_and_closing_instants_match_the_csv(imported):
    traces, _, _, _, cases = imported
    for key, rows in traces.items():
        assert cases[key]["opened_at"] == oracle.at(rows[0]).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), key
        assert cases[key]["closed_at"] == oracle.at(rows[-1]).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), key


def test_first_response_and_resolution_business_times_match_the_csv(imported):
    traces, _, _, _, cases = imported
    for key, rows in traces.items():
        want, got = oracle.case_figures(rows), cases[key]
        assert got["first_response_business_seconds"] == pytest.approx(
            want["first_response_business_seconds"], abs=0.01), key
        assert got["resolution_business_seconds"] == pytest.approx(
            want["resolution_business_seconds"], abs=0.01), key
