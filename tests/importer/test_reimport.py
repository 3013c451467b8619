"""Importing a later export of the same cases: a trial export first, then the final one with more
rows. Every row's commands have ids from the row's content, so stored rows add nothing, new rows
continue the stored case from its stored state, and nothing is lost silently: a row older than what
is stored, or for a case now live, is refused and counted. Expected values are worked by hand from
the logs written here (docs/import.md, "How a stage is reached")."""

from __future__ import annotations

from collections import Counter

import pytest

from casework.importer import import_log, load_mapping
from casework.policy import load_policy
from domain.commands import AddNote
from domain.model import Actor, Role
from tests.conftest import sqlite_store
from tests.importer.test_import import MAPPING, state_of, write

# The trial export: A waits on its customer, B is closed, C is new.
TRIAL = [
    ["A", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"],  # open, a note
    ["A", "Take in charge", "2026-03-02T09:30:00+08:00", "ann", "normal"],  # respond
    ["A", "Waiting for customer", "2026-03-02T10:00:00+08:00", "ann", "normal"],  # request_clarification
    ["B", "New", "2026-03-02T09:05:00+08:00", "bob", "normal"],  # open, a note
    ["B", "Take in charge", "2026-03-02T09:10:00+08:00", "bob", "normal"],  # respond
    ["B", "Closed", "2026-03-03T11:00:00+08:00", "bob", "normal"],  # propose_solution, confirm_solution
    ["C", "New", "2026-03-02T09:10:00+08:00", "cid", "low"],  # open, a note
]
# What the final export adds.
LATER = [
    ["A", "Take in charge", "2026-03-03T10:00:00+08:00", "bob", "normal"],  # record_customer_reply
    ["A", "Closed", "2026-03-04T11:00:00+08:00", "bob", "normal"],  # propose_solution, confirm_solution
    ["C", "Closed", "2026-03-02T12:00:00+08:00", "cid", "low"],  # propose_solution, confirm_solution
    ["D", "New", "2026-03-03T09:00:00+08:00", "dan", "normal"],  # open, a note
    ["D", "INVALID", "2026-03-03T09:05:00+08:00", "dan", "normal"],  # close
]
FINAL = TRIAL + LATER


def kinds(store, ticket: str) -> list[str]:
    history = store.history(state_of(store, ticket).case_id)
    return [e.type for e in history if not e.type.startswith(("Sla", "CaseEscal"))]


def streams(store, tickets="ABCD") -> dict[str, list[dict]]:
    """The cases' facts. Not `recorded_at`: when the store took an imported fact is the as-of clock's
    business (projections/asof.py), not what happened."""
    return {t: [e.model_dump(exclude={"imported_at"}) for e in store.history(state_of(store, t).case_id)]
            for t in tickets}


@pytest.fixture
def mapping(tmp_path):
    path = tmp_path / "helpdesk.toml"
    path.write_text(MAPPING)
    return load_mapping(path)


def test_the_final_export_adds_the_rows_the_trial_did_not_have(tmp_path, mapping):
    store, policy = sqlite_store(tmp_path / "events.db"), load_policy()
    trial = import_log(write(tmp_path / "trial.csv", TRIAL), mapping, store, policy)
    assert (trial.imported, trial.commands, trial.closed, len(trial.open_case_ids)) == (3, 11, 1, 2)  # 4 + 5 + 2
    final = import_log(write(tmp_path / "final.csv", FINAL), mapping, store, policy)
    # A continued (3 commands), C continued (2), D new (3), B stored whole already.
    assert (final.imported, final.continued, final.already) == (1, 2, 1)
    assert (final.commands, final.rows, final.refused, final.changed) == (8, 9, [], [])
    assert (final.closed, final.open_case_ids) == (4, [])
    assert kinds(store, "A") == ["CaseOpened", "NoteAdded", "ResponseSent", "ClarificationRequested",
                                 "CustomerReplied", "SolutionProposed", "SolutionConfirmed", "CaseClosed"]
    assert kinds(store, "C") == ["CaseOpened", "NoteAdded", "SolutionProposed", "SolutionConfirmed", "CaseClosed"]
    assert kinds(store, "D") == ["CaseOpened", "NoteAdded", "CaseClosed"]
    assert state_of(store, "A").closed_at.isoformat() == "2026-03-04T03:00:00+00:00"
    # The same streams as the final export imported at once, event for event.
    whole = sqlite_store(tmp_path / "whole.db")
    import_log(tmp_path / "final.csv", mapping, whole, policy)
    assert streams(store) == streams(whole)
    assert store.recorder.max_notification_id() == whole.recorder.max_notification_id()
    # And once more: nothing to add.
    again = import_log(tmp_path / "final.csv", mapping, store, policy)
    assert (again.already, again.commands, again.events, again.refused, again.changed) == (4, 0, 0, [], [])


def test_a_re_export_in_another_order_is_the_same_rows(tmp_path, mapping):
    store, policy = sqlite_store(tmp_path / "events.db"), load_policy()
    import_log(write(tmp_path / "final.csv", FINAL), mapping, store, policy)
    head = store.recorder.max_notification_id()
    shuffled = FINAL[::-1][::2] + FINAL[::-1][1::2]  # another order, every row once
    assert sorted(shuffled) == sorted(FINAL) and shuffled != FINAL
    again = import_log(write(tmp_path / "shuffled.csv", shuffled), mapping, store, policy)
    assert (again.already, again.imported, again.continued, again.refused, again.changed) == (4, 0, 0, [], [])
    assert store.recorder.max_notification_id() == head
    # Imported first from the re-ordered file: the same streams (a row's place is no part of it).
    other = sqlite_store(tmp_path / "other.db")
    import_log(tmp_path / "shuffled.csv", mapping, other, policy)
    assert streams(other) == streams(store)


def test_identical_duplicate_rows_are_each_a_row_and_a_third_copy_later_is_refused(tmp_path, mapping):
    store, policy = sqlite_store(tmp_path / "events.db"), load_policy()
    twice = [["E", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"]] * 2
    first = import_log(write(tmp_path / "twice.csv", twice), mapping, store, policy)
    assert first.commands == 3 and kinds(store, "E") == ["CaseOpened", "NoteAdded", "NoteAdded"]  # open + 2 notes
    again = import_log(tmp_path / "twice.csv", mapping, store, policy)
    assert (again.already, again.events, again.refused) == (1, 0, [])
    # A third identical row in a later export, at the last instant the store holds: the trial was cut
    # inside that instant, so it continues the case, as the three rows imported at once (a third note).
    thrice = import_log(write(tmp_path / "thrice.csv", twice + twice[:1]), mapping, store, policy)
    assert (thrice.continued, thrice.events, thrice.refused) == (1, 1, [])
    assert kinds(store, "E") == ["CaseOpened", "NoteAdded", "NoteAdded", "NoteAdded"]
    whole = sqlite_store(tmp_path / "whole.db")
    import_log(tmp_path / "thrice.csv", mapping, whole, policy)
    assert streams(store, "E") == streams(whole, "E")
    # A fourth copy with a later row stored: now before the last stored instant, refused, said.
    later = [["E", "Take in charge", "2026-03-02T10:00:00+08:00", "ann", "normal"]]
    import_log(write(tmp_path / "later.csv", twice + twice[:1] + later), mapping, store, policy)
    four = import_log(write(tmp_path / "four.csv", twice * 2 + later), mapping, store, policy)
    assert (four.already, four.events) == (1, 0)
    assert four.refused_by_activity == Counter({("New", "before_stored"): 1})
    assert "stored up to 2026-03-02T02:00:00+00:00" in four.refused[0].message


def test_a_late_arriving_older_row_is_refused_and_the_later_ones_are_imported(tmp_path, mapping):
    store, policy = sqlite_store(tmp_path / "events.db"), load_policy()
    import_log(write(tmp_path / "trial.csv", TRIAL), mapping, store, policy)
    older = ["A", "Escalate", "2026-03-02T09:45:00+08:00", "sue", "normal"]  # before A's stored 10:00
    final = import_log(write(tmp_path / "final.csv", [older, *FINAL]), mapping, store, policy)
    assert final.refused_by_activity == Counter({("Escalate", "before_stored"): 1})
    [refused] = final.refused
    assert (refused.case, refused.where, refused.command) == ("A", "line 2", "escalate")
    assert "would rewrite its history" in refused.message
    assert (final.continued, final.commands) == (2, 8)  # A's and C's later rows, D: as without it
    assert "Escalate: before_stored x1" in final.report()
    without = sqlite_store(tmp_path / "without.db")  # nothing of the refused row in the store
    import_log(write(tmp_path / "plain.csv", FINAL), mapping, without, policy)
    assert streams(store) == streams(without)


def test_a_case_the_engine_owns_takes_no_rows_from_the_old_system(tmp_path, mapping):
    store, policy = sqlite_store(tmp_path / "events.db"), load_policy()
    import_log(write(tmp_path / "trial.csv", TRIAL), mapping, store, policy)
    a = state_of(store, "A")
    # Continued live since the trial: an agent's note, decided by the engine, is in its stream.
    note = AddNote(command_id="live-note-1", actor=Actor(id="ann", role=Role.agent), text="called the customer")
    assert store.execute(a.case_id, note, a.opened_at.replace(day=5), a.version).refusal is None
    final = import_log(write(tmp_path / "final.csv", FINAL), mapping, store, policy)
    assert final.refused_by_activity == Counter({("Take in charge", "case_live"): 1, ("Closed", "case_live"): 1})
    assert "continues live in casework" in final.refused[0].message
    assert state_of(store, "A").version == a.version + 1  # the live note only
    assert (final.continued, final.imported) == (1, 1)  # C and D as before
    # Told by the caller (the command line asks the engine): C's workflow runs, nothing in its stream yet.
    store2 = sqlite_store(tmp_path / "two.db")
    import_log(tmp_path / "trial.csv", mapping, store2, policy)
    c = state_of(store2, "C").case_id
    told = import_log(tmp_path / "final.csv", mapping, store2, policy, live=lambda case_id: case_id == c)
    assert told.refused_by_activity == Counter({("Closed", "case_live"): 1})
    assert state_of(store2, "C").stage.value == "intake" and state_of(store2, "A").stage.value == "closed"


def test_a_changed_mapping_is_said_and_the_stored_history_kept(tmp_path, mapping):
    store, policy = sqlite_store(tmp_path / "events.db"), load_policy()
    import_log(write(tmp_path / "final.csv", FINAL), mapping, store, policy)
    before = streams(store)
    path = tmp_path / "changed.toml"  # "New" is now a note with another text
    path.write_text(MAPPING.replace('"New" = { action = "add_note", fields = { text = "new ticket" } }',
                                    '"New" = { action = "add_note", fields = { text = "ticket opened" } }'))
    again = import_log(tmp_path / "final.csv", load_mapping(path), store, policy)
    assert (again.already, again.events, again.refused) == (4, 0, [])
    assert again.changed_by_activity == Counter({"New": 4})  # one "New" row in each of A, B, C, D
    assert "stored rows the mapping now plans otherwise (kept as stored) 4" in again.report()
    assert streams(store) == before


# With reopen_after_close = "reject_solution" (the BPIC mapping's): work after a close reopens the
# case within the policy's reopen window (168 h), later it is a follow-up case (domain/reopen.py).
RETURNS = [
    ["R", "New", "2026-03-02T09:00:00+08:00", "ann", "normal"],
    ["R", "Closed", "2026-03-02T12:00:00+08:00", "ann", "normal"],  # end of the trial export
    ["R", "Take in charge", "2026-03-04T10:00:00+08:00", "bob", "normal"],  # 46 h later: reopens
    ["R", "Closed", "2026-03-04T11:00:00+08:00", "bob", "normal"],
    ["R", "Take in charge", "2026-03-20T10:00:00+08:00", "bob", "normal"],  # 16 days later: a follow-up
    ["R", "Closed", "2026-03-20T11:00:00+08:00", "bob", "normal"],
]


@pytest.mark.parametrize("cut", [2, 3, 5])  # the trial ends closed; reopened; with the follow-up open
def test_returns_after_a_close_across_two_exports_are_the_same_reopen_and_follow_up(tmp_path, cut):
    path = tmp_path / "returns.toml"
    path.write_text(MAPPING.replace('reopen_after_close = "refuse"', 'reopen_after_close = "reject_solution"'))
    mapping, policy = load_mapping(path), load_policy()
    store = sqlite_store(tmp_path / "events.db")
    trial = import_log(write(tmp_path / "trial.csv", RETURNS[:cut]), mapping, store, policy)
    assert trial.follow_ups == (cut == 5)
    final = import_log(write(tmp_path / "final.csv", RETURNS), mapping, store, policy)
    assert (final.continued, final.follow_ups, final.closed, final.refused) == (1, int(cut < 5), 2, [])
    r = state_of(store, "R")
    assert (r.reopen_count, r.closed_at.isoformat()) == (1, "2026-03-04T03:00:00+00:00")
    assert kinds(store, "R")[5:] == ["CaseReopened", "SolutionRejected", "SolutionProposed", "SolutionConfirmed",
                                     "CaseClosed"]
    whole = sqlite_store(tmp_path / "whole.db")
    once = import_log(tmp_path / "final.csv", mapping, whole, policy)
    assert once.follow_ups == 1 and streams(store, "R") == streams(whole, "R")
    [follow_up] = [cid for cid in case_ids(store) if store.state(cid).follow_up_of == r.case_id]
    assert case_ids(store) == case_ids(whole)  # the follow-up's id derives from the case and the row
    assert [e.model_dump(exclude={"imported_at"}) for e in store.history(follow_up)] == [
        e.model_dump(exclude={"imported_at"}) for e in whole.history(follow_up)]
    assert (store.state(follow_up).opened_at.isoformat(), store.state(follow_up).stage.value) == (
        "2026-03-20T02:00:00+00:00", "closed")
    # Again, and with the follow-up's rows only in a third export: nothing to add, the follow-up found.
    again = import_log(tmp_path / "final.csv", mapping, store, policy)
    assert (again.already, again.events, again.follow_ups, again.refused, again.changed) == (1, 0, 0, [], [])


def case_ids(store) -> list[str]:
    from casework.importer.export import case_histories
    return sorted(events[0].case_id for events in case_histories(store))
