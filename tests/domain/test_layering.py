"""The rules stay pure, and the case workflow (run without Temporal's sandbox) stays deterministic by
construction: domain/ does no I/O, reads no clock and draws no randomness; the workflow reads time only
through workflow.now(). Checked on the source, so a violation fails here rather than in a replay."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = sorted((ROOT / "domain").glob("*.py"))
WORKFLOW = ROOT / "workflows" / "service_case.py"

# Modules the rules may not import: I/O, clocks of the host, other layers.
FORBIDDEN_IMPORTS = {"temporalio", "sqlite3", "psycopg", "socket", "subprocess", "httpx", "os", "random",
                     "time", "casework", "activities", "projections", "workflows", "threading", "asyncio"}
# domain/store.py wraps the event store (eventsourcing) for activities; the workflow uses only its models.
ALLOWED = {"store.py": {"eventsourcing"}}
NONDETERMINISTIC_CALLS = {"now", "utcnow", "today", "uuid1", "uuid4", "urandom", "time", "monotonic",
                          "perf_counter", "random", "randint", "choice", "getenv"}
# A fresh id for a case opened without a source reference: called by clients, never by the workflow
# (it takes its case id from its workflow id); a return-visit plan's default command id likewise.
CALL_EXCEPTIONS = {("ids.py", "uuid4"), ("return_visits.py", "uuid4")}


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def calls(tree: ast.AST) -> set[str]:
    """Names of the functions called: `x.now()` as now; a bare `time(0)` (datetime.time) is a value,
    so bare names count only when they draw randomness."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                out.add(node.func.attr)
            elif isinstance(node.func, ast.Name) and node.func.id in {"uuid1", "uuid4", "urandom", "randint",
                                                                       "choice", "random", "getenv"}:
                out.add(node.func.id)
    return out


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.name)
def test_the_rules_do_no_io_and_read_no_clock(path):
    tree = ast.parse(path.read_text())
    bad_imports = imported(tree) & (FORBIDDEN_IMPORTS - ALLOWED.get(path.name, set()))
    assert not bad_imports, f"{path.name} imports {bad_imports}"
    bad_calls = {c for c in calls(tree) & NONDETERMINISTIC_CALLS if (path.name, c) not in CALL_EXCEPTIONS}
    assert not bad_calls, f"{path.name} calls {bad_calls}"


def test_the_case_workflow_reads_time_only_from_temporal():
    tree = ast.parse(WORKFLOW.read_text())
    bad = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in NONDETERMINISTIC_CALLS:
            owner = node.func.value
            if not (isinstance(owner, ast.Name) and owner.id == "workflow"):  # workflow.now() is Temporal's
                bad.add(ast.unparse(node.func))
    assert not bad, f"the workflow calls {bad}"
    assert not imported(tree) & {"sqlite3", "psycopg", "socket", "subprocess", "httpx", "os", "random", "time"}
