"""Regressions from a hostile review of the importer: each test states its expected values by hand."""

from __future__ import annotations

import pytest

from casework.importer import MappingError, import_log, load_mapping
from casework.policy import load_policy
from tests.conftest import sqlite_store
from tests.importer.test_import import MAPPING, run_cli, state_of, write


@pytest.mark.parametrize(("entry", "unknown"), [
    ('{ stage = "response", action = "reassign", fields = { asignee = "{resource}", reason = "x" } }', "'asignee'"),
    ('{ action = "add_note", fields = { txt = "a note" } }', "'txt'"),
    ('{ action = "escalate", fields = { reason = "r", command_id = "mine" } }', "'command_id'"),
])
def test_a_misspelt_action_field_refuses_the_mapping_when_it_loads(tmp_path, entry, unknown):
    bad = tmp_path / "bad.toml"
    bad.write_text(MAPPING.replace('"Take in charge" = { stage = "response" }', f'"Take in charge" = {entry}'))
    with pytest.raises(MappingError, match=f"activities.Take in charge: .*has no field {unknown}"):
        load_mapping(bad)
    done = run_cli(tmp_path, "import", str(tmp_path / "log.csv"), "--mapping", str(bad), "--no-live")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Take in charge" in done.stderr and unknown in done.stderr, done.stderr


def test_a_staff_only_row_after_a_close_is_refused_and_never_reopens(tmp_path):
    path = tmp_path / "helpdesk.toml"
    path.write_text(MAPPING.replace('reopen_after_close = "refuse"', 'reopen_after_close = "reopen"'))
    log = write(tmp_path / "log.csv", [
        ["C", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"],  # line 2: opens, a note
        ["C", "Closed", "2026-03-05T11:00:00+08:00", "bob", "normal"],  # line 3: resolved close
        ["C", "New", "2026-03-05T12:00:00+08:00", "bob", "normal"],  # line 4: a note, an hour later
    ])
    store = sqlite_store(tmp_path / "events.db")
    summary = import_log(log, load_mapping(path), store, load_policy())
    c = state_of(store, "C")
    assert (c.stage.value, c.closure_reason.value, c.reopen_count) == ("closed", "resolved", 0)
    assert [(r.where, r.activity, r.command, r.code) for r in summary.refused] == [
        ("line 4", "New", "add_note", "case_closed")]
    kinds = [e.type for e in store.history(c.case_id) if not e.type.startswith(("Sla", "CaseEscal"))]
    assert kinds == ["CaseOpened", "NoteAdded", "SolutionProposed", "SolutionConfirmed", "CaseClosed"]
