"""What-if (casework/simulate.py): a small history worked by hand, and the re-decision under the
recorded terms checked against what the engine stored (an independent oracle: the live `decide`).

The shipped policy: normal priority 8/8/48 business hours, high 2/4/16, on the `business` calendar
(Asia/Shanghai, Mon-Fri 09:00-12:00 and 13:00-18:00; March 2026 has no holiday); a breach escalates
one level; warnings (50/75/90 %) do not. The draft halves every target: normal 4/4/24, high 1/2/8."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from casework.config import load_settings
from casework.history import write_history
from casework.stores import open_case_store
from casework.policy import DEFAULT_POLICY, load_policy
from casework.simulate import simulate
from domain import events as e
from domain.redecide import redecide
from domain.store import CaseStore
from tests.cli.helpers import BIN, clean_env
from tests.factory import CUSTOMER, command, open_case

SH = ZoneInfo("Asia/Shanghai")
SHIPPED = load_policy(None)
STRICT = SHIPPED.model_copy(update={"version": "twice-as-strict", "targets": [
    r.model_copy(update={"first_response_hours": r.first_response_hours / 2,
                         "next_response_hours": r.next_response_hours / 2,
                         "resolution_hours": r.resolution_hours / 2}) for r in SHIPPED.targets]})


def t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SH)


def store_at(path) -> CaseStore:
    return CaseStore(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})


def drive(store: CaseStore, case_id: str, priority: str, team: str, steps) -> None:
    opening = open_case(case_id=case_id, priority=priority, team=team)
    terms = SHIPPED.terms_for(opening.priority, opening.customer.tier, opening.category, opening.channel)
    assert store.execute(case_id, opening, t(2, 9), 0, terms).refusal is None
    for cmd, at in steps:
        assert store.execute(case_id, cmd, at, store.state(case_id).version).refusal is None


def small_history(store: CaseStore) -> None:
    """All three open Mon 2 Mar 09:00.
    A normal/t1: answered 15:00 (5 business h: under 8, over the draft's 4 -> the draft breaches at
      13:00+1h = 14:00), solved Tue 10:00 (9 h: under 48 and 24).
    B high/t1: answered 10:30 (1.5 h: under 2, over the draft's 1 -> breach 10:00), solved 15:00
      (5 h: under 16 and 8).
    C normal/t2: answered Tue 10:00 (9 h: breaches under both, 18:00 and 14:00), solved Tue 11:00
      (10 h: under 48 and 24).
    Each breach escalates once; each case is confirmed (closed) right after its solution."""
    def solved(at_answer, at_solution):
        return [(command("respond", message="on it"), at_answer),
                (command("propose_solution", summary="fixed"), at_solution),
                (command("confirm_solution", CUSTOMER), at_solution)]
    drive(store, "A", "normal", "t1", solved(t(2, 15), t(3, 10)))
    drive(store, "B", "high", "t1", solved(t(2, 10, 30), t(2, 15)))
    drive(store, "C", "normal", "t2", solved(t(3, 10), t(3, 11)))


def test_a_policy_twice_as_strict_reports_the_breaches_worked_by_hand(tmp_path):
    store = store_at(tmp_path / "ev.db")
    small_history(store)
    before = store.recorder.max_notification_id()
    sim = simulate(store, STRICT, until=t(31, 0))
    rows = {(r.group, r.value): r for r in sim.rows}
    got = {k: (r.cases, r.breached_current, r.breached_draft, r.compliance_pct_current, r.compliance_pct_draft,
               r.breaches_current, r.breaches_draft, r.escalations_current, r.escalations_draft)
           for k, r in rows.items()}
    assert got == {
        ("priority", "high"): (1, 0, 1, 100.0, 0.0, 0, 1, 0, 1),     # B
        ("priority", "normal"): (2, 1, 2, 50.0, 0.0, 1, 2, 1, 2),    # A, C
        ("team", "t1"): (2, 0, 2, 100.0, 0.0, 0, 2, 0, 2),           # A, B
        ("team", "t2"): (1, 1, 1, 0.0, 0.0, 1, 1, 1, 1),             # C
        ("month", "2026-03"): (3, 1, 3, 66.7, 0.0, 1, 3, 1, 3),
    }
    assert store.recorder.max_notification_id() == before  # nothing written


def test_against_another_policy_file_instead_of_the_pinned_terms(tmp_path):
    store = store_at(tmp_path / "ev.db")
    small_history(store)
    # The draft against itself: both columns agree (3 breaches: A, B and C's first responses).
    sim = simulate(store, STRICT, until=t(31, 0), against=STRICT)
    month = next(r for r in sim.rows if r.group == "month")
    assert (month.breaches_current, month.breaches_draft, sim.against_version) == (3, 3, "twice-as-strict")


def test_since_and_until_choose_the_cases_by_their_opening(tmp_path):
    store = store_at(tmp_path / "ev.db")
    small_history(store)
    assert simulate(store, STRICT, since=t(2, 10), until=t(31, 0)).cases == 0
    assert simulate(store, STRICT, since=t(2, 9), until=t(31, 0)).cases == 3
    # Clocks evaluated only up to Mon 2 Mar 09:30: nothing answered yet, nothing due yet either.
    early = simulate(store, STRICT, until=t(2, 9, 30))
    assert early.cases == 3 and all(r.breaches_draft == 0 for r in early.rows)


def test_re_deciding_under_the_recorded_terms_gives_back_what_the_engine_stored(tmp_path):
    """The oracle: `decide` stored the consequences live; the re-decision must find the same ones.
    A supervisor's escalation is left out of the re-decision, and with it the level later escalations
    reach; so the level is not compared, every other field of the consequence is."""
    store = store_at(tmp_path / "ev.db")
    ids = write_history(store, 60)

    def key(x):
        return (x.type, getattr(x, "clock", None), x.at, getattr(x, "cause", None), getattr(x, "due", None))

    people = (e.EscalationAcknowledged, e.CaseDeEscalated)
    for cid in ids:
        history = store.history(cid)
        want = [key(x) for x in history
                if not isinstance(x, people) and not (isinstance(x, e.CaseEscalated) and x.cause == "supervisor")]
        assert [key(x) for x in redecide(history, lambda case, recorded: recorded, max(x.at for x in history))] == want


def test_the_command_prints_json_and_the_table_and_says_what_is_wrong(tmp_path):
    env = clean_env(CASEWORK_DATA_DIR=str(tmp_path / "data"))
    small_history(open_case_store(load_settings(None, environ=env)))  # the engine's own store, sealed
    draft = tmp_path / "draft.toml"
    text = DEFAULT_POLICY.read_text()
    for old, new in [("first_response_hours = 8\n", "first_response_hours = 4\n"),
                     ("first_response_hours = 2\n", "first_response_hours = 1\n")]:
        text = text.replace(old, new)
    draft.write_text(text)

    def casework(*args: str, cwd=tmp_path) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "casework"), *args], capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=120)

    run = casework("simulate", "--policy", str(draft), "--until", "2026-03-31T00:00:00+08:00", "--json")
    assert run.returncode == 0, run.stderr
    sim = json.loads(run.stdout)
    rows = {(r["group"], r["value"]): r for r in sim["rows"]}
    # Only the first-response targets halved: the same breaches as the twice-as-strict draft.
    assert (rows["priority", "normal"]["breaches_draft"], rows["priority", "high"]["breaches_draft"]) == (2, 1)
    assert datetime.fromisoformat(sim["until"]) == t(31, 0)
    # --since Mon 2 Mar 09:00 Shanghai is 01:00 UTC: all three; from 09:01 on, none.
    for since, n in [("2026-03-02T01:00:00Z", 3), ("2026-03-02T09:01:00+08:00", 0)]:
        run = casework("simulate", "--policy", str(draft), "--since", since, "--until", "2026-03-31T00:00:00+08:00",
                       "--json")
        assert (run.returncode, json.loads(run.stdout)["cases"]) == (0, n), run.stderr
    # The table: the worked figures of normal priority (A and C; A's response 5 h is late under 4 h).
    table = casework("simulate", "--policy", str(draft), "--until", "2026-03-31T00:00:00+08:00")
    assert table.returncode == 0, table.stderr
    cells = next(line.split() for line in table.stdout.splitlines() if line.split()[:2] == ["priority", "normal"])
    assert cells[2:] == ["2", "50.0", "0.0", "1", "2", "1", "2"]
    # `python -m casework.simulate` is the same command.
    same = subprocess.run([sys.executable, "-m", "casework.simulate", "--policy", str(draft), "--until",
                           "2026-03-31T00:00:00+08:00", "--json"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert same.returncode == 0 and json.loads(same.stdout)["rows"] == sim["rows"], same.stderr

    bad = tmp_path / "bad.toml"
    bad.write_text("version = ")
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    for args, code, says, where in [
            (["--policy", str(bad)], 2, "does not parse", tmp_path),
            (["--policy", str(tmp_path / "missing.toml")], 2, "No such file", tmp_path),
            (["--policy", str(draft), "--since", "2026-03-01"], 2, "has no time zone", tmp_path),
            (["--policy", str(draft), "--until", "soon"], 2, "not an ISO 8601 instant", tmp_path),
            (["--policy", str(draft), "--until", "2099-01-01T00:00:00Z"], 2, "is in the future", tmp_path),
            (["--policy", str(draft), "--since", "2026-03-05T00:00Z", "--until", "2026-03-01T00:00Z"], 2,
             "is not before", tmp_path),
            (["--policy", str(draft)], 4, "no event store here", empty)]:
        run = subprocess.run([str(BIN / "casework"), "simulate", *args], capture_output=True, text=True, cwd=where,
                             env={**env, "CASEWORK_DATA_DIR": str(where / "data")}, timeout=120)
        assert (run.returncode, says in run.stderr, "Traceback" in run.stderr) == (code, True, False), (args, run)
    assert list(empty.iterdir()) == []  # nothing created where there was no store
