"""The timers, scale-out and import/rebuild benchmarks stay runnable: tiny, nothing timed or compared
against a figure here (the figures are bench/README.md's, from `python -m bench.run`). What is checked
is what the benchmarks count, against what the run was made to do."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from bench import hold, scaleout, timers
from bench.lifecycle import COMMANDS_PER_CASE

ROOT = Path(__file__).resolve().parents[1]


async def test_the_timer_benchmark_runs_tiny(tmp_path):
    # 4 cases whose warning and breach fall due at the same instants (the closure ends at T0), then
    # cases held on timers up to 10: every event where the policy puts it, none decided before it.
    out = await timers.run(tmp_path, timer_cases=4, hold_cases=10, hold_seconds=120,
                           first_response=timedelta(seconds=4), lead=2)
    late = out["lateness"]
    assert late["opened_before_t0"]
    for kind in ("SlaClockWarned", "SlaClockBreached"):
        assert late[kind]["events"] == 4 and late[kind]["missing"] == 0
        assert late[kind]["at_the_planned_instant"] == 4
        assert late[kind]["decided_lateness_s"]["min"] >= 0  # a timer never fires before its instant
        assert late[kind]["stored_lateness_s"]["min"] >= late[kind]["decided_lateness_s"]["min"] - 1
    assert out["hold"]["reached"] and out["hold"]["points"][-1]["open_cases"] == 10
    assert out["rss_idle_mib"] > 0 and out["worker_cache"]["max_cached_workflows"] == 1000


async def test_the_scaleout_benchmark_runs_tiny(tmp_path):
    out = await scaleout.run(tmp_path, counts=(1, 2), cases=2, concurrency=2)
    assert set(out["workers"]) == {"1", "2"}
    for k in out["workers"].values():
        assert [r["commands"] for r in k["runs"]] == [2 * COMMANDS_PER_CASE]
    assert set(out["workers"]["2"]["runs"][0]["cores_busy"]) == {"server", "worker-0", "worker-1"}


def test_import_and_rebuild_are_in_the_benchmark(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--only", "import", "rebuild", "--import-traces", "15",
                           "--rounds", "2", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(out.read_text())
    imported, rebuilt = summary["import"], summary["rebuild"]
    assert imported["cases"] == 15 and imported["refused"] == 0
    assert rebuilt["events"] == imported["events"] > 15
    assert imported["rounds"] == rebuilt["rounds"] == len(imported["runs"]) == 2
    assert imported["ratio_to_raw_store_appends"] > 0 and rebuilt["ratio_to_raw_store_appends"] > 0


async def test_the_hold_benchmark_runs_tiny(tmp_path):
    # 8 open tickets in files of 4, each imported by `casework import` and handed over 3 starts at a
    # time; 3 of them probes whose first response falls due 12 s after their opening (warning at half).
    out = await hold.run(tmp_path, cases=8, hold_seconds=1, step=4, concurrency=3, probes=3, replay_checks=2,
                         fire_after=timedelta(seconds=12), shard=4, sample=1)
    assert [f["open"] for f in out["import"]["files"]] == [4, 4]
    handover = out["handover"]
    assert (handover["started"], handover["already"], handover["stopped_by_time"]) == (8, 0, False)
    assert [p["started"] for p in handover["points"][:2]] == [4, 8]
    assert all(p["worker_rss_mib"] > 0 for p in handover["points"])
    assert out["replay_check"]["cases"] == 2 and out["replay_check"]["answered"] == 2
    probes = out["probes"]
    assert probes["events"] == probes["expected"] == 6
    # Each warning at half the first response (6 s) after the opening, each breach at 12 s.
    assert sorted(r["at_minus_opened_s"] for r in probes["rows"]) == [6.0] * 3 + [12.0] * 3
    assert min(r["decided_late_s"] for r in probes["rows"]) >= 0
