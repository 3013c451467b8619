"""`casework at-risk --limit N --offset K`: a page of the at-risk list and the total; every page
together is the whole list the command prints without --limit."""

from __future__ import annotations

import json
import os

from click.testing import CliRunner

from bench.synthetic import write_read_models
from casework.cli import cli
from casework.config import sqlite_env
from projections.runner import open_view


def test_at_risk_pages_are_the_whole_list_in_order_with_its_total(tmp_path):
    write_read_models(open_view(sqlite_env(tmp_path / "reporting.db")), target_events=4_000)  # 200 cases
    env = {**{k: None for k in os.environ if k.startswith(("CASEWORK_", "TEMPORAL_"))},
           "CASEWORK_DATA_DIR": str(tmp_path)}

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["at-risk", "--within-hours", "1", *args], env=env)
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.stdout

    whole = json.loads(run("--json"))  # the synthetic clocks were due in 2024-2025: all overdue now
    assert len(whole) > 10 and [r["due"] for r in whole] == sorted(r["due"] for r in whole)
    pages, offset = [], 0
    while offset <= len(whole):
        page = json.loads(run("--json", "--limit", "4", "--offset", str(offset)))
        assert page["total"] == len(whole) and page["offset"] == offset
        pages += page["rows"]
        offset += 4
    assert pages == whole
    table = CliRunner().invoke(cli, ["at-risk", "--within-hours", "1", "--limit", "3"], env=env)
    assert table.exit_code == 0 and f"1-3 of {len(whole)} at risk" in table.stderr
    shown = {r["case_id"] for r in whole[:3]}
    assert all(case in table.stdout for case in shown)
    assert not any(r["case_id"] in table.stdout for r in whole[3:] if r["case_id"] not in shown)
