"""A projection process killed (SIGKILL) mid-batch resumes where its last committed batch ended; killed
in its bulk load of the fresh tables (projections.runner.ReportProjection.bulk), its indexes and the
dashboard's days are whole again after the resumption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from casework.config import Settings, sqlite_env
from casework.stores import open_case_store
from projections.runner import ReportProjection, open_view
from projections.schema import INDEXES
from tests.projections.history import figures_from_events, write_history
from tests.projections.test_bulk_load import indexes
from tests.web.test_console_figures_oracle import assert_days_equal_the_cases

CASEWORK = str(Path(sys.executable).parent / "casework")


def test_killed_projection_resumes_without_a_double_count(tmp_path):
    store = open_case_store(Settings(data_dir=tmp_path))  # as the engine opens it: encrypted at rest
    case_ids = write_history(store, cases=150, seed=3)
    env = {**os.environ, "CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_LOG_FORMAT": "json"}
    view = open_view(sqlite_env(tmp_path / "reporting.db"))
    projection = ReportProjection(store, view)
    head = projection.lag().head

    kills, positions, indexed = 0, [], []
    while kills < 3:
        proc = subprocess.Popen([CASEWORK, "projections", "run", "--batch-size", "7"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = projection.position()
        deadline = time.monotonic() + 60
        while projection.position() == start and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.05 * (kills + 1))  # then somewhere inside a later batch
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        positions.append(projection.position())
        indexed.append(set(indexes(view)))
        if positions[-1] == head:
            break
    assert positions[0] < head, "the first run finished before it could be killed"
    assert indexed[0] == set(), "the first run was killed in its bulk load, without its indexes"

    finished = subprocess.run([CASEWORK, "projections", "catch-up", "--json"], env=env, capture_output=True,
                              text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert projection.lag().events_behind == 0
    assert set(indexes(view)) == set(INDEXES)
    [kept] = view.query("SELECT zone, position FROM {dashboard_zone}")
    assert kept["position"] == projection.position()
    assert_days_equal_the_cases(view, ZoneInfo(kept["zone"]))

    want = figures_from_events(store, case_ids)
    activity = view.query("SELECT actor_id, COUNT(*) AS n FROM {agent_activity} GROUP BY actor_id")
    assert {r["actor_id"]: r["n"] for r in activity} == dict(want["activity"])
    escalated = view.query("SELECT COUNT(*) AS n FROM {escalations} WHERE kind = 'escalated'")[0]["n"]
    assert escalated == sum(want["escalations"].values())
    rows = {r["case_id"]: r for r in view.query("SELECT case_id, stage, reopen_count, events FROM {cases}")}
    assert {c: rows[c]["stage"] for c in case_ids} == want["stage"]
    assert {c: rows[c]["reopen_count"] for c in case_ids} == want["reopens"]
    assert all(rows[c]["events"] == len(store.history(c)) for c in case_ids)
