"""Reports as of an instant (projections/asof.py): recorded live during a real run (Temporal dev
server, worker, SQLite store, the live projection caught up after each step), then asked for
afterwards with --as-of: each must equal what the live report said at that instant."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime

from casework.config import sqlite_env
from projections import reports
from projections.asof import report_as_of, run_report, view_as_of
from projections.runner import ReportProjection, open_view
from tests.factory import CUSTOMER, command, open_case

ASKED = [(name, None) for name in sorted(reports.REPORTS)] + [
    ("sla", "priority"), ("sla", "team"), ("outcomes", "priority"), ("times", "team"), ("at_risk", None)]


async def test_every_report_as_of_an_instant_equals_the_live_report_then(engine, tmp_path):
    live = ReportProjection(engine.store, open_view(sqlite_env(tmp_path / "reports.db")))
    recorded: list[tuple[datetime, dict]] = []

    def snapshot() -> None:
        live.catch_up()
        now = datetime.now(UTC)
        recorded.append((now, {(n, by): run_report(live.view, n, now, by) for n, by in ASKED}))

    snapshot()  # nothing yet
    ids = []
    for priority, team in [("high", "t1"), ("normal", "t2"), ("low", "t1")]:
        ids.append((await engine.cases.open_case(open_case(priority=priority, team=team))).case_id)
        snapshot()
    steps = [(ids[0], command("respond", message="on it")), (ids[0], command("propose_solution", summary="fix")),
             (ids[1], command("request_clarification", question="which?")),
             (ids[0], command("confirm_solution", CUSTOMER)),
             (ids[0], command("record_customer_reply", CUSTOMER, message="again")),  # a reopen
             (ids[1], command("record_customer_reply", CUSTOMER, message="this")),
             (ids[2], command("close", reason="duplicate", note="see the other"))]
    for case_id, cmd in steps:
        await asyncio.sleep(0.01)
        await engine.cases.send(case_id, cmd)
        snapshot()
    assert recorded[-1][1][("outcomes", None)] != recorded[1][1][("outcomes", None)]  # the history moved
    for at, said in recorded:
        with view_as_of(engine.store, at) as view:
            for (name, by), rows in said.items():
                assert run_report(view, name, at, by) == rows, (name, by, at)


async def test_the_command_answers_as_of_and_says_what_is_wrong(tmp_path):
    env = {"CASEWORK_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "casework.asof", "sla", "--as-of", "2026-03-01T00:00:00Z", "--json"],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and json.loads(ok.stdout) == [], ok.stderr
    bad = subprocess.run([sys.executable, "-m", "casework.asof", "sla", "--as-of", "yesterday"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "not an ISO 8601 instant" in bad.stderr and "Traceback" not in bad.stderr


def test_report_as_of_before_the_first_event_is_empty(store):
    assert report_as_of(store, "sla", datetime(2000, 1, 1, tzinfo=UTC)) == []
