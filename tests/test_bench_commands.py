"""The command benchmark runs tiny in the default test run (it times nothing here): casework's commands
and the bare update alternate, and each round reports both sides and their ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_benchmark_runs_tiny(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--only", "e2e", "--cases", "2", "--concurrency", "2",
                           "--rounds", "2", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(out.read_text())
    ab = summary["commands_vs_bare_update"]
    assert len(ab["rounds"]) == 2
    for r in ab["rounds"]:
        assert r["casework"]["commands"] == 2 * 8  # an open and the lifecycle's 7 commands per case
        assert r["bare"]["round_trips"] == r["casework"]["commands"]
        assert r["throughput_ratio"] > 0 and r["p99_ratio"] > 0
    assert summary["floor_update_with_activity"]["round_trips"] > 0


def test_every_bench_module_imports():
    """The scripts run by hand (bench.history_events, bench.cpu_per_command, ...) are not run here:
    at least each must import, so a change to what they share does not break them unseen."""
    import importlib
    import pkgutil

    import bench

    names = [m.name for m in pkgutil.iter_modules(bench.__path__)]
    assert {"run", "server", "history_events", "cpu_per_command", "profile_commands"} <= set(names)
    for name in names:
        importlib.import_module(f"bench.{name}")
