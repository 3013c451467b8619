"""dashboard_days across a rolling upgrade or a rollback: a projection of the version before
dashboard_days (5af4abe, run from `git archive` in a process of its own) applies batches to the same
reporting tables. The days must follow the cases, or not be read (found by a hostile review)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from datetime import timedelta
from pathlib import Path

from casework.config import sqlite_env
from casework.web.console import figures
from projections import dashboard
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.projections.history import write_history
from tests.web.test_console_figures_oracle import NOW, SHANGHAI, _at, assert_days_equal_the_cases

ROOT = Path(__file__).resolve().parents[2]
BEFORE = "5af4abe"  # main before dashboard_days and the lean history

OLD_PROJECTION = """
import sys
from casework.config import sqlite_env
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view
store = CaseStore(env=sqlite_env(sys.argv[1]))
until = int(sys.argv[3]) if len(sys.argv) > 3 else None
print(ReportProjection(store, open_view(sqlite_env(sys.argv[2])), batch_size=40).catch_up(until=until))
"""


def old_checkout(tmp_path: Path) -> Path:
    """The version before, from this clone's history (a shallow clone has none: said, not guessed)."""
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{BEFORE}^{{commit}}"]).returncode:
        pytest.skip(f"commit {BEFORE} is not in this clone's history")
    out = tmp_path / "old"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def run_old_projection(old: Path, events: Path, reporting: Path, until: int | None = None) -> int:
    """The version before's projection over the same tables, in a process of its own: events applied."""
    args = [str(events), str(reporting)] + ([] if until is None else [str(until)])
    done = subprocess.run([sys.executable, "-c", OLD_PROJECTION, *args], cwd=old,
                          env={"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


def forty_cases(tmp_path: Path) -> tuple[Path, Path, object, dict, int]:
    """An event store of 40 cases' histories, the reporting environment keeping the days in
    Shanghai, and the log's last position."""
    events, reporting = tmp_path / "events.db", tmp_path / "reporting.db"
    store = sqlite_store(events)
    write_history(store, cases=40)
    return events, reporting, store, {**sqlite_env(reporting), dashboard.ZONE_KEY: SHANGHAI.key}, \
        store.recorder.max_notification_id()


def dashboard_of_every_case(view) -> tuple[figures.Dashboard, int]:
    """The dashboard over every day a case opened on, and how many cases the tables hold."""
    cases = view.query("SELECT opened_at FROM {cases}")
    days = sorted(_at(r["opened_at"]).astimezone(SHANGHAI).date() for r in cases)
    return figures.dashboard(view, figures.Filters(start=days[0], end=days[-1] + timedelta(days=1)),
                             SHANGHAI, NOW), len(cases)


def test_days_stay_right_after_an_older_projection_applied_batches(tmp_path):
    """A rolling upgrade (or a rollback and upgrade again): the new projection keeps dashboard_days,
    then a worker of the version before takes the projection's lease and applies batches (it knows
    nothing of dashboard_days), then the new one takes over again. dashboard_zone still says the days
    are complete, so the console sums them: every case the old projection applied or changed must
    still be counted (or the days derived anew), as a naive count of `cases` gives."""
    events, reporting, store, env, head = forty_cases(tmp_path)
    view = open_view(env)
    ReportProjection(store, view, batch_size=40).catch_up(until=head // 3)
    assert_days_equal_the_cases(view, SHANGHAI)  # holds while only the new projection runs

    old = old_checkout(tmp_path)
    assert run_old_projection(old, events, reporting) > 0
    # Before the new projection runs again, the console does not read the days the old one left behind.
    view = open_view(env)
    d, cases = dashboard_of_every_case(view)
    assert (d.rows, d.from_days) == (cases, False)

    view = open_view(env)  # the new worker again: nothing left to apply, or a few more cases
    write_history(store, cases=2, seed=11)
    ReportProjection(store, view, batch_size=40).catch_up()
    d, cases = dashboard_of_every_case(view)
    assert d.from_days, "the new projection's days are read again"
    assert d.rows == cases, f"dashboard from_days={d.from_days} counts {d.rows} of {cases} cases"
    assert_days_equal_the_cases(view, SHANGHAI)


def test_the_projection_goes_on_after_an_older_one_applied_the_middle_of_the_log(tmp_path):
    """As above, but the old projection applies only the middle third of the log: the new one then
    applies the last third, changing cases whose earlier events the old one applied. It must go on
    (and its days match the cases), not stop on 'no duration to take out' for ever."""
    events, reporting, store, env, head = forty_cases(tmp_path)
    ReportProjection(store, open_view(env), batch_size=40).catch_up(until=head // 3)
    old = old_checkout(tmp_path)
    run_old_projection(old, events, reporting, 2 * head // 3)
    view = open_view(env)
    projection = ReportProjection(store, view, batch_size=40)
    projection.catch_up()
    assert projection.lag().events_behind == 0
    assert_days_equal_the_cases(view, SHANGHAI)


def test_an_upgrade_from_tables_the_older_projection_kept(tmp_path):
    """The plain upgrade: the version before kept the tables to half the log; the new one goes on."""
    events, reporting, store, env, head = forty_cases(tmp_path)
    old = old_checkout(tmp_path)
    run_old_projection(old, events, reporting, head // 2)
    view = open_view(env)
    ReportProjection(store, view, batch_size=40).catch_up()
    assert_days_equal_the_cases(view, SHANGHAI)
    names = {r["name"] for r in view.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert not names & {"clocks_due", "activity_actor"}, names
