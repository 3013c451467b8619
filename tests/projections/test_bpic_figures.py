"""Report figures over the real BPIC 2013 history, checked against figures computed from the CSV."""

from __future__ import annotations

from casework.config import sqlite_env
from collections import Counter
from datetime import UTC, datetime

import pytest

from casework.bpic2013 import PRIORITY, import_history, read_traces, replay_for
from casework.policy import load_policy
from projections import reports
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.projections.history import p50
from tests.replay.test_bpic2013_traces import DATA

TRACES = 400


def at(row) -> datetime:
    return datetime.strptime(row["Complete Timestamp"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def bpic(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bpic")
    traces = dict(list(read_traces(DATA).items())[:TRACES])
    store = sqlite_store(tmp / "events.db")
    import_history(store, [replay_for(k, rows) for k, rows in traces.items()], load_policy())
    view = open_view(sqlite_env(tmp / "reporting.db"))
    ReportProjection(store, view, batch_size=1000).catch_up()
    return traces, view


def test_case_counts_by_priority_and_month_match_the_csv(bpic):
    traces, view = bpic
    by_priority = Counter(PRIORITY[rows[0]["impact"]] for rows in traces.values())
    assert {r["priority"]: r["cases"] for r in reports.sla_compliance(view, "priority")} == dict(by_priority)
    by_month = Counter(at(rows[0]).strftime("%Y-%m") for rows in traces.values())
    months = Counter()
    for r in reports.complaints(view):
        months[r["month"]] += r["cases"]
    assert months == by_month


def test_reopen_rate_and_first_contact_resolution_match_the_csv(bpic):
    traces, view = bpic
    reopened = sum(any(r["Activity"].startswith("Completed") for r in rows[:-1]) for rows in traces.values())
    waited = {k for k, rows in traces.items() if any(r["Activity"] == "Accepted-Wait" for r in rows)}
    first_contact = sum(1 for k, rows in traces.items()
                        if k not in waited and not any(r["Activity"].startswith("Completed") for r in rows[:-1]))
    outcomes = reports.outcomes(view, "tier")
    assert sum(r["closed"] for r in outcomes) == len(traces)
    assert sum(r["reopened"] for r in outcomes) == reopened
    assert sum(r["first_contact_resolved"] for r in outcomes) == first_contact


def test_median_resolution_time_matches_the_csv(bpic):
    traces, view = bpic
    hours: dict[str, list[float]] = {}
    for rows in traces.values():
        # Solved when the last unbroken run of Completed rows began (an earlier completion was reopened).
        i = len(rows) - 1
        while i > 0 and rows[i - 1]["Activity"].startswith("Completed"):
            i -= 1
        hours.setdefault(PRIORITY[rows[0]["impact"]], []).append((at(rows[i]) - at(rows[0])).total_seconds() / 3600)
    times = {r["priority"]: r for r in reports.response_times(view)}
    for priority, values in hours.items():
        assert times[priority]["resolution_hours_p50"] == round(p50(values), 2), priority
