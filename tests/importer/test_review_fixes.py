"""Regressions from a hostile review of the importer: each test states its expected values by hand."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from casework.importer import MappingError, export_log, import_log, load_mapping
from casework.policy import load_policy
from tests.conftest import sqlite_store
from tests.importer.test_import import MAPPING, mapping, run_cli, state_of, write  # noqa: F401 (a fixture)


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


DOC = Path(__file__).resolve().parents[2] / "docs" / "import.md"


def _block(lang: str) -> str:
    """The first ```lang block of docs/import.md: the documented example, as written."""
    return re.search(rf"^```{lang}\n(.*?)^```$", DOC.read_text(), re.S | re.M).group(1)


def test_the_documented_example_mapping_loads_and_imports_the_documented_log(tmp_path):
    (tmp_path / "helpdesk.toml").write_text(_block("toml"))
    (tmp_path / "log.csv").write_text(_block("csv"))
    mapping = load_mapping(tmp_path / "helpdesk.toml")
    store = sqlite_store(tmp_path / "events.db")
    summary = import_log(tmp_path / "log.csv", mapping, store, load_policy())
    # T1: note, response, a wait, the reply, closed resolved; T2: a note, closed invalid.
    assert (summary.imported, summary.closed, summary.refused, summary.not_imported) == (2, 2, [], [])
    t1, t2 = state_of(store, "T1"), state_of(store, "T2")
    assert (t1.closure_reason.value, t1.clarification_rounds, t1.customer.id) == ("resolved", 1, "cust-T1")
    assert (t2.closure_reason.value, t2.priority.value) == ("invalid", "normal")  # "low" is not listed: "*"


def test_a_problem_says_its_place_once(tmp_path, mapping):
    log = write(tmp_path / "log.csv", [["T9", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"],
                                        ["T9", "Teleport", "2026-03-02T09:10:00+08:00", "ann", "normal"]])
    summary = import_log(log, mapping, sqlite_store(tmp_path / "events.db"), load_policy())
    [problem] = summary.not_imported
    assert (problem.where, problem.message) == ("line 3", "activity 'Teleport' is not in the mapping")
    assert "  case T9, line 3: activity 'Teleport' is not in the mapping" in summary.report().splitlines()


def test_a_csv_row_with_more_or_fewer_cells_than_the_header_refuses_its_trace(tmp_path, mapping):
    log = tmp_path / "log.csv"
    log.write_text("ticket,status,time,who,prio\n"
                   "T1,New,2026-03-02T09:00:00+08:00,ann,normal\n"
                   "T2,New,2026-03-02T09:00:00+08:00,ann,normal,extra\n"  # line 3: one cell too many
                   "T3,New,2026-03-02T09:00:00+08:00,ann\n"  # line 4: prio missing
                   "T1,Take in charge,2026-03-02T09:30:00+08:00,ann,normal\n")
    store = sqlite_store(tmp_path / "events.db")
    summary = import_log(log, mapping, store, load_policy())
    assert summary.imported == 1 and state_of(store, "T1").stage.value == "response"
    assert sorted((p.case, p.where, p.message) for p in summary.not_imported) == [
        ("T2", "line 3", "malformed row: more cells than the header's 5"),
        ("T3", "line 4", "malformed row: fewer cells than the header's 5")]
    assert state_of(store, "T2") is None and state_of(store, "T3") is None


def test_an_unreadable_xes_log_creates_no_store(tmp_path):
    broken = tmp_path / "broken.xes"
    broken.write_text('<log xmlns="http://www.xes-standard.org/"><trace><string key="concept:name" value="A"/>')
    done = run_cli(tmp_path, "import", str(broken), "--mapping", "casework", "--no-live", "--no-progress")
    assert done.returncode == 2 and "is not well-formed XES" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists() or list((tmp_path / "data").iterdir()) == []


def test_the_xes_export_declares_the_version_as_the_1849_2016_schema_types_it(tmp_path, mapping):
    store = sqlite_store(tmp_path / "events.db")
    import_log(write(tmp_path / "log.csv", [["T1", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"]]),
               mapping, store, load_policy())
    assert export_log(store, tmp_path / "out.xes") == 2  # open, and the note of "New"
    log = ElementTree.parse(tmp_path / "out.xes").getroot()
    assert log.attrib == {"xes.version": "1849.2016"}  # an xs:decimal; no nested attributes written, none declared
    assert not any(len(list(attr)) for event in log.iter("{http://www.xes-standard.org/}event") for attr in event)
