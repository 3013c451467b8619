"""As-of over imported history (projections/asof.py): `--as-of` reads business time, so the
backlog on a past day counts the imported tickets open that day; `--known-at` reads the store's
time, so before the import nothing of the imported cases counts, while the engine's own cases do.
Real SQLite stores; the expected backlogs are counted by hand from the log below."""

from __future__ import annotations

import csv
import json
import subprocess
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from casework.cli import cli
from casework.importer import import_log, load_mapping
from casework.policy import load_policy
from domain.ids import case_id_for
from domain.model import SourceRef
from projections.asof import report_as_of
from tests.cli.helpers import BIN, clean_env
from tests.conftest import sqlite_store
from tests.factory import open_case

MAPPING = """
source = "olddesk"

[columns]
case = "ticket"
activity = "status"
timestamp = "time"
resource = "who"

[open]
customer = "cust-{case}"
category = "fault"
channel = "email"
priority = "normal"
subject = "Ticket {case}"

[activities]
"New" = { action = "add_note", fields = { text = "new ticket" } }
"Take in charge" = { stage = "response" }
"Waiting for customer" = { stage = "needs_clarification" }
"Solved" = { stage = "solution" }
"Closed" = { stage = "closed" }
"INVALID" = { stage = "closed", reason = "invalid" }
"""

LOG = [
    ["A", "New", "2025-02-20T09:00:00Z", "ann"],  # in response from 20 Feb to 5 Mar
    ["A", "Take in charge", "2025-02-20T10:00:00Z", "ann"],
    ["A", "Closed", "2025-03-05T12:00:00Z", "ann"],
    ["B", "New", "2025-02-27T08:00:00Z", "bob"],  # waiting for the customer on 1 March
    ["B", "Waiting for customer", "2025-02-28T09:00:00Z", "bob"],
    ["B", "Take in charge", "2025-03-02T09:00:00Z", "bob"],
    ["B", "Solved", "2025-03-03T09:00:00Z", "bob"],
    ["B", "Closed", "2025-03-04T09:00:00Z", "bob"],
    ["C", "New", "2025-02-28T20:00:00Z", "cid"],  # untouched (intake) on 1 March
    ["C", "Take in charge", "2025-03-10T09:00:00Z", "cid"],
    ["C", "Closed", "2025-03-11T09:00:00Z", "cid"],
    ["D", "New", "2025-02-10T09:00:00Z", "ann"],  # closed before 1 March
    ["D", "INVALID", "2025-02-12T09:00:00Z", "ann"],
    ["E", "New", "2025-03-02T09:00:00Z", "bob"],  # opened after 1 March, open at the end of the log
    ["E", "Take in charge", "2025-03-02T10:00:00Z", "bob"],
    ["F", "New", "2025-02-25T12:00:00Z", "cid"],  # open at the end of the log
    ["F", "Take in charge", "2025-02-25T13:00:00Z", "cid"],
]

FIRST_OF_MARCH = datetime(2025, 3, 1, tzinfo=UTC)


def row(stage: str, **ages: int) -> dict:
    counts = {name: ages.get(key, 0) for key, name in
              (("d0", "<1d"), ("d1", "1-3d"), ("d3", "3-7d"), ("d7", "7-30d"), ("d30", ">30d"))}
    return {"stage": stage, **counts, "total": sum(counts.values())}


# Open at 2025-03-01T00:00Z, by hand: C opened 4 h before (intake, <1d); B 1 d 16 h before, waiting
# (needs_clarification, 1-3d); F 3 d 12 h before and A 8 d 15 h before, both taken in charge
# (response: 3-7d and 7-30d). D closed on 12 Feb; E opened on 2 March.
BACKLOG_1_MARCH = [row("intake", d0=1), row("needs_clarification", d1=1), row("response", d3=1, d7=1)]


def write_log(tmp_path):
    log, mapping = tmp_path / "old.csv", tmp_path / "olddesk.toml"
    with open(log, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["ticket", "status", "time", "who"])
        out.writerows(LOG)
    mapping.write_text(MAPPING)
    return log, mapping


def imported_id(ticket: str) -> str:
    return case_id_for(SourceRef(system="olddesk", external_id=ticket))


def test_as_of_reads_business_time_and_known_at_the_stores_time(tmp_path):
    store = sqlite_store(tmp_path / "events.db")
    live = store.execute("live-1", open_case(case_id="live-1"), datetime.now(UTC), 0)  # the engine's own case
    assert live.refusal is None
    before_import = datetime.now(UTC)
    log, mapping = write_log(tmp_path)
    summary = import_log(log, load_mapping(mapping), store, load_policy())
    assert (summary.imported, summary.refused, summary.not_imported) == (6, [], [])
    after_import = datetime.now(UTC)
    stamps = {e.imported_at for e in store.history(imported_id("A"))}
    assert len(stamps) == 1 and before_import <= stamps.pop() <= after_import
    assert all(e.imported_at is None for e in store.history("live-1"))

    # Business time: the imported tickets as they stood on 1 March 2025; the live case did not exist.
    assert report_as_of(store, "backlog", FIRST_OF_MARCH) == BACKLOG_1_MARCH
    # ... and as the store knows it now (after the import), the same.
    assert report_as_of(store, "backlog", FIRST_OF_MARCH, known_at=after_import) == BACKLOG_1_MARCH
    # Known before the import: nothing of the imported cases, on 1 March or at that instant, where
    # the live report showed the live case alone.
    assert report_as_of(store, "backlog", FIRST_OF_MARCH, known_at=before_import) == []
    assert report_as_of(store, "backlog", before_import, known_at=before_import) == [row("intake", d0=1)]
    # Known after it, at that instant: the live case and the imported cases still open (E and F, in
    # response since March 2025, so over 30 days old).
    assert report_as_of(store, "backlog", after_import, known_at=after_import) == [
        row("intake", d0=1), row("response", d30=2)]
    # The live case is the engine's: business time is its decision instant, so just before it was
    # opened only the imported cases still open (E and F) are in the backlog.
    just_before = live.events[0].recorded_at - timedelta(seconds=1)
    assert report_as_of(store, "backlog", just_before) == [row("response", d30=2)]


def invoke(env: dict, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_the_command_says_which_clock_it_reads(tmp_path):
    env = clean_env(CASEWORK_DATA_DIR=str(tmp_path / "data"))
    log, mapping = write_log(tmp_path)
    before_import = datetime.now(UTC).isoformat()
    code, out = invoke(env, "import", str(log), "--mapping", str(mapping), "--no-live", "--no-progress")
    assert code == 0 and "imported 6" in out, out

    def backlog(*when: str) -> list[dict]:
        code, out = invoke(env, "report", "backlog", "--json", *when)
        assert code == 0, out
        return json.loads(out)

    assert backlog("--as-of", "2025-03-01T08:00:00+08:00") == BACKLOG_1_MARCH
    assert backlog("--as-of", "2025-03-01T00:00:00Z", "--known-at", before_import) == []
    assert backlog("--known-at", before_import) == []
    assert backlog("--known-at", datetime.now(UTC).isoformat()) == [row("response", d30=2)]
    # at-risk reads the same clocks. By hand, on the shipped calendar (Asia/Shanghai, 09-12 and 13-18
    # on weekdays) and the normal priority's 48 business hours to resolve: A, opened Thu 20 Feb 17:00
    # local, had used 1 h that day, 8 h on each of the five weekdays to Thu 27 Feb, and the last 7 h
    # on Fri 28 Feb, due 17:00 local (09:00Z). F's (opened after hours on 25 Feb) falls due in March,
    # B's waits for the customer, C's first response is due on Monday 3 March.
    code, out = invoke(env, "at-risk", "--json", "--within-hours", "0", "--as-of", "2025-03-01T00:00:00Z")
    assert code == 0 and [(r["case_id"], r["clock"], r["due"]) for r in json.loads(out)] == [
        (imported_id("A"), "resolution", "2025-02-28T09:00:00.000000Z")], out
    code, out = invoke(env, "at-risk", "--json", "--as-of", "2025-03-01T00:00:00Z", "--known-at", before_import)
    assert (code, json.loads(out)) == (0, []), out
    code, out = invoke(env, "report", "backlog", "--help")
    assert "business time" in out and "--known-at" in out
    # Through the real entry point (its own process): usage errors exit 2 with what is wrong.
    for args, says in [(["--known-at", "2025-03-01"], "has no time zone"),
                       (["--known-at", "2999-01-01T00:00:00Z"], "--known-at 2999-01-01T00:00:00+00:00 is in the future"),
                       (["--as-of", "2025-03-01T00:00:00Z", "--known-at", "2999-01-01T00:00:00Z"],
                        "--known-at 2999-01-01T00:00:00+00:00 is in the future")]:
        done = subprocess.run([str(BIN / "casework"), "report", "backlog", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert (done.returncode, says in done.stderr, "Traceback" in done.stderr) == (2, True, False), (args, done)
