"""What-if over the imported BPIC 2013 log, through the real `casework simulate` command: a policy
twice as strict reports more breaches, and per priority exactly the breaches counted straight from
the CSV (tests/importer/oracle.py: csv and datetime only, the mapping's and docs/sla.md's rules
written out by hand) under each policy's targets, read from the policy files with tomllib."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections import Counter

import pytest

from casework.config import load_settings
from casework.importer import import_log
from casework.policy import DEFAULT_POLICY, load_policy
from casework.stores import open_case_store
from tests.cli.helpers import BIN, clean_env
from tests.importer import oracle
from tests.importer.test_bpic_import import chosen, write_csv

CLOCKS = ("first_response", "next_response", "resolution")


def halved(text: str) -> str:
    """The shipped policy with every target of every rule halved, and its own version."""
    out, n = re.subn(r"(?m)^(first_response|next_response|resolution)_hours = ([0-9.]+)$",
                     lambda m: f"{m.group(1)}_hours = {float(m.group(2)) / 2}", text)
    assert n == 3 * text.count("[[targets]]")
    return out.replace('version = "default-2026.11"', 'version = "twice-as-strict"', 1)


def targets(text: str) -> dict[str, dict[str, float]]:
    """Hours per clock for each priority of a BPIC case (tier C, category problem, channel other):
    the rule naming the priority, else the catch-all (the first rule, naming nothing)."""
    rules = tomllib.loads(text)["targets"]
    catch_all = rules[0]
    assert not {"priority", "tier", "category", "channel"} & set(catch_all)
    out = {}
    for priority in oracle.PRIORITY.values():
        rule = next((r for r in rules if r.get("priority") == priority), catch_all)
        out[priority] = {clock: rule[f"{clock}_hours"] for clock in CLOCKS}
    return out


@pytest.fixture(scope="module", params=["subset", pytest.param("whole", marks=pytest.mark.slow)])
def imported(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("whatif-bpic")
    traces, log = oracle.traces(), oracle.DATA
    if request.param == "subset":
        traces, log = chosen(traces), tmp / "bpic-subset.csv"
        write_csv(log, traces)
    env = clean_env(CASEWORK_DATA_DIR=str(tmp / "data"))
    store = open_case_store(load_settings(None, environ=env))  # the engine's own store, as it keeps it
    summary = import_log(log, "bpic2013", store, load_policy(), progress=False)
    assert (summary.imported, summary.refused) == (len(traces), [])
    # Work after the reopen window is a follow-up case of its own (oracle.cases): each is simulated.
    assert summary.follow_ups == sum(len(oracle.cases(rows)) - 1 for rows in traces.values()) > 0
    return traces, env, tmp


def test_a_policy_twice_as_strict_reports_more_breaches_explained_per_priority(imported):
    traces, env, tmp = imported
    shipped = DEFAULT_POLICY.read_text()
    draft = tmp / "strict.toml"
    draft.write_text(halved(shipped))
    run = subprocess.run([str(BIN / "casework"), "simulate", "--policy", str(draft), "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    sim = json.loads(run.stdout)
    n = sum(len(oracle.cases(rows)) for rows in traces.values())
    assert (sim["draft_version"], sim["against_version"], sim["cases"]) == ("twice-as-strict", None, n)
    got = {r["value"]: r for r in sim["rows"] if r["group"] == "priority"}

    want: dict[str, Counter] = {"now": Counter(), "draft": Counter()}
    breached: dict[str, Counter] = {"now": Counter(), "draft": Counter()}
    cases = Counter()
    for column, text in (("now", shipped), ("draft", halved(shipped))):
        hours = targets(text)
        for rows in traces.values():
            priority = oracle.PRIORITY[rows[0]["impact"]]
            for case in oracle.cases(rows):
                n = oracle.breaches(case, hours, rows[0])
                want[column][priority] += n
                breached[column][priority] += n > 0
                cases[priority] += column == "now"
    assert sum(len(oracle.next_response_spans(case)) > 0 for rows in traces.values()
               for case in oracle.cases(rows)) > 10  # all three clocks

    for priority, row in got.items():
        assert row["cases"] == cases[priority], priority
        assert (row["breaches_current"], row["breaches_draft"]) == (
            want["now"][priority], want["draft"][priority]), priority
        assert (row["breached_current"], row["breached_draft"]) == (
            breached["now"][priority], breached["draft"][priority]), priority
        assert row["compliance_pct_draft"] == round(100 * (cases[priority] - breached["draft"][priority])
                                                    / cases[priority], 1), priority
        assert row["breaches_draft"] >= row["breaches_current"]
        assert row["escalations_draft"] >= row["escalations_current"]  # each breach escalates (up the ladder)
    assert set(got) == set(cases)
    assert sum(want["draft"].values()) > sum(want["now"].values())  # more breaches, per priority above

    # The table says the same, one line per priority.
    table = subprocess.run([str(BIN / "casework"), "simulate", "--policy", str(draft)],
                           capture_output=True, text=True, env=env, timeout=600)
    assert table.returncode == 0, table.stderr
    lines = {tuple(line.split()[:2]): line.split() for line in table.stdout.splitlines()[2:]}
    for priority in cases:
        cells = lines["priority", priority]
        assert (int(cells[5]), int(cells[6])) == (want["now"][priority], want["draft"][priority])
