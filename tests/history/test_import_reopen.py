"""The importer with a real reopen (reopen_after_close = "reopen"): work after a resolved close
reopens the case within the policy's window; after it the row opens a follow-up case linked to the
closed one (domain/reopen.py, as live), and an invalid close stays closed."""

from __future__ import annotations

from collections import Counter

from casework.importer import import_log, load_mapping
from casework.policy import load_policy
from tests.conftest import sqlite_store
from tests.importer.test_import import MAPPING, state_of, write

LOG = [
    ["R1", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"],
    ["R1", "Take in charge", "2026-03-02T09:30:00+08:00", "ann", "normal"],
    ["R1", "Solved", "2026-03-02T11:00:00+08:00", "ann", "normal"],
    ["R1", "Closed", "2026-03-02T12:00:00+08:00", "ann", "normal"],
    ["R1", "Take in charge", "2026-03-04T10:00:00+08:00", "bob", "normal"],  # 2 days later: reopens
    ["R1", "Solved", "2026-03-04T11:00:00+08:00", "bob", "normal"],
    ["R1", "Closed", "2026-03-05T11:00:00+08:00", "bob", "normal"],
    ["R2", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"],
    ["R2", "Solved", "2026-03-02T11:00:00+08:00", "ann", "normal"],
    ["R2", "Closed", "2026-03-02T12:00:00+08:00", "ann", "normal"],
    ["R2", "Take in charge", "2026-03-20T10:00:00+08:00", "bob", "normal"],  # 18 days later: a follow-up case
    ["R2", "Closed", "2026-03-20T11:00:00+08:00", "bob", "normal"],  # closes the follow-up case
    ["R3", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"],
    ["R3", "INVALID", "2026-03-02T09:10:00+08:00", "ann", "normal"],
    ["R3", "Take in charge", "2026-03-02T10:00:00+08:00", "ann", "normal"],  # invalid: stays closed
]


def test_work_after_a_close_reopens_within_the_window(tmp_path):
    path = tmp_path / "helpdesk.toml"
    path.write_text(MAPPING.replace('reopen_after_close = "refuse"', 'reopen_after_close = "reopen"'))
    store = sqlite_store(tmp_path / "events.db")
    summary = import_log(write(tmp_path / "log.csv", LOG), load_mapping(path), store, load_policy())
    r1 = state_of(store, "R1")
    assert (r1.stage.value, r1.closure_reason.value, r1.reopen_count) == ("closed", "resolved", 1)
    kinds = [e.type for e in store.history(r1.case_id) if not e.type.startswith(("Sla", "CaseEscal"))]
    assert kinds == ["CaseOpened", "NoteAdded", "ResponseSent", "SolutionProposed", "SolutionConfirmed", "CaseClosed",
                     "CaseReopened", "SolutionRejected", "SolutionProposed", "SolutionConfirmed", "CaseClosed"]
    r2 = state_of(store, "R2")
    assert (r2.stage.value, r2.reopen_count, state_of(store, "R3").reopen_count) == ("closed", 0, 0)
    assert r2.closed_at.isoformat() == "2026-03-02T04:00:00+00:00"  # its history ends at its close
    # The work 18 days later went to a follow-up case linked to R2: opened by the customer's late
    # rejection, answered at once (the row's stage), closed an hour later.
    [follow_up] = [s for s in map(store.state, case_ids(store)) if s.follow_up_of == r2.case_id]
    kinds = [e.type for e in store.history(follow_up.case_id) if not e.type.startswith(("Sla", "CaseEscal"))]
    assert kinds == ["CaseOpened", "ResponseSent", "SolutionProposed", "SolutionConfirmed", "CaseClosed"]
    assert (follow_up.opened_at.isoformat(), follow_up.closed_at.isoformat()) == (
        "2026-03-20T02:00:00+00:00", "2026-03-20T03:00:00+00:00")
    assert (follow_up.customer.id, follow_up.source) == ("cust-R2", None)
    assert (summary.imported, summary.follow_ups, summary.closed) == (3, 1, 4)
    assert summary.refused_by_activity == Counter({("Take in charge", "case_closed"): 1})  # R3's invalid close


def case_ids(store) -> list[str]:
    from casework.importer.export import case_histories
    return [events[0].case_id for events in case_histories(store)]
