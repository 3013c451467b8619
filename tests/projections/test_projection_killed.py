"""A projection process killed (SIGKILL) mid-batch resumes where its last committed batch ended."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from casework.config import sqlite_env
from pathlib import Path

from projections.runner import ReportProjection, open_view
from casework.config import Settings
from casework.stores import open_case_store
from tests.projections.history import figures_from_events, write_history

CASEWORK = str(Path(sys.executable).parent / "casework")


def test_killed_projection_resumes_without_a_double_count(tmp_path):
    store = open_case_store(Settings(data_dir=tmp_path))  # as the engine opens it: encrypted at rest
    case_ids = write_history(store, cases=150, seed=3)
    env = {**os.environ, "CASEWORK_DATA_DIR": str(tmp_path), "CASEWORK_LOG_FORMAT": "json"}
    view = open_view(sqlite_env(tmp_path / "reporting.db"))
    projection = ReportProjection(store, view)
    head = projection.lag().head

    kills, positions = 0, []
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
        if positions[-1] == head:
            break
    assert positions[0] < head, "the first run finished before it could be killed"

    finished = subprocess.run([CASEWORK, "projections", "catch-up", "--json"], env=env, capture_output=True,
                              text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert projection.lag().events_behind == 0

    want = figures_from_events(store, case_ids)
    activity = view.query("SELECT actor_id, COUNT(*) AS n FROM {agent_activity} GROUP BY actor_id")
    assert {r["actor_id"]: r["n"] for r in activity} == dict(want["activity"])
    escalated = view.query("SELECT COUNT(*) AS n FROM {escalations} WHERE kind = 'escalated'")[0]["n"]
    assert escalated == sum(want["escalations"].values())
    rows = {r["case_id"]: r for r in view.query("SELECT case_id, stage, reopen_count, events FROM {cases}")}
    assert {c: rows[c]["stage"] for c in case_ids} == want["stage"]
    assert {c: rows[c]["reopen_count"] for c in case_ids} == want["reopens"]
    assert all(rows[c]["events"] == len(store.history(c)) for c in case_ids)
