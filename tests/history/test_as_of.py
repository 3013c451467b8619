"""Reports as of an instant (projections/asof.py): recorded live during a real run (Temporal dev
server, worker, SQLite store, the live projection caught up after each step), then asked for
afterwards with --as-of: each must equal what the live report said at that instant."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from click.testing import CliRunner

from casework.cli import cli
from casework.config import reporting_env, sqlite_env
from projections import reports
from projections.asof import report_as_of, run_report, view_as_of
from projections.runner import ReportProjection, open_view
from tests.cli.helpers import casework, clean_env, cli_engine
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


# The same questions through the real `casework` command (live, then --as-of afterwards).
ASKED_CLI = [("report", "sla", "--by", "priority"), ("report", "outcomes"), ("report", "times", "--by", "team"),
             ("report", "backlog"), ("report", "escalations"), ("at-risk", "--within-hours", "200")]


def invoke(env: dict, *args: str) -> list[dict]:
    """`casework ARGS --json` run in this process by click's test runner (a subprocess each time
    would take seconds); its exit code must be 0."""
    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return json.loads(result.output)


async def test_the_command_as_of_an_instant_prints_what_the_live_command_printed_then(temporal_env, tmp_path):
    async with cli_engine(temporal_env, tmp_path / "data") as engine:
        # Only this engine's data directory: none of the tester's own settings.
        env = {**{k: None for k in os.environ if k.startswith(("CASEWORK_", "TEMPORAL_"))},
               "CASEWORK_DATA_DIR": str(engine.settings.data_dir)}
        live = ReportProjection(engine.store, open_view(reporting_env(engine.settings)))
        recorded: list[tuple[datetime, dict]] = []

        def snapshot() -> None:
            live.catch_up()
            said = {args: invoke(env, *args) for args in ASKED_CLI}
            recorded.append((datetime.now(UTC), said))  # after the live answers: nothing stored between

        ids = []
        for priority, team in [("urgent", "t1"), ("normal", "t2")]:
            ids.append((await engine.cases.open_case(open_case(priority=priority, team=team))).case_id)
        snapshot()
        for case_id, cmd in [(ids[0], command("respond", message="on it")),
                             (ids[0], command("propose_solution", summary="fix")),
                             (ids[0], command("confirm_solution", CUSTOMER)),
                             (ids[0], command("record_customer_reply", CUSTOMER, message="again")),  # a reopen
                             (ids[1], command("close", reason="duplicate", note="see the other"))]:
            await engine.cases.send(case_id, cmd)
            snapshot()
        assert recorded[0][1] != recorded[-1][1]  # the answers moved
        assert recorded[0][1][ASKED_CLI[-1]] != []  # the urgent case's 15-minute first response is at risk
        for at, said in recorded:
            for args, rows in said.items():
                assert invoke(env, *args, "--as-of", at.isoformat()) == rows, (args, at)


async def test_the_command_says_what_is_wrong_and_creates_nothing(tmp_path):
    env = clean_env(CASEWORK_DATA_DIR=str(tmp_path / "data"))
    cases = [  # (arguments, exit code, what the message says)
        (["report", "sla", "--as-of", "2026-03-01T00:00:00Z", "--json"], 4, "no event store here"),
        (["at-risk", "--as-of", "2026-03-01T00:00:00+08:00"], 4, "no event store here"),
        (["report", "sla", "--as-of", "2026-03-01"], 2, "has no time zone"),
        (["report", "sla", "--as-of", "2026-03-01T08:00"], 2, "has no time zone"),
        (["at-risk", "--as-of", "yesterday"], 2, "not an ISO 8601 instant"),
        (["report", "sla", "--as-of", "2999-01-01T00:00:00Z"], 2, "is in the future"),
        (["report", "backlog", "--by", "team", "--as-of", "2026-03-01T00:00:00Z"], 2, "has no grouping"),
    ]
    for args, code, says in cases:
        result = await casework(*args, env=env, cwd=tmp_path)
        assert (result.code, says in result.err, "Traceback" in result.err) == (code, True, False), (args, result)
    # `python -m casework.asof` is the same command.
    same = subprocess.run([sys.executable, "-m", "casework.asof", "sla", "--as-of", "2026-03-01T00:00:00Z"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert same.returncode == 4 and "no event store here" in same.stderr, same.stderr
    assert list(tmp_path.iterdir()) == []  # a reading command creates nothing


def test_report_as_of_before_the_first_event_is_empty(store):
    assert report_as_of(store, "sla", datetime(2000, 1, 1, tzinfo=UTC)) == []
