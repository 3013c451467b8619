"""Regressions from a hostile review of the importer: each test states its expected values by hand."""

from __future__ import annotations

import pytest

from casework.importer import MappingError, load_mapping
from tests.importer.test_import import MAPPING, run_cli


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
