"""The event store, the same tests on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from domain.lifecycle import decide, replay
from domain.store import CaseStore
from tests.factory import CUSTOMER, command, open_case

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def opened(store: CaseStore):
    cmd = open_case(case_id=str(uuid.uuid4()))
    events = decide(None, cmd, NOW)
    assert store.append(cmd.command_id, events) == 1
    return replay(events)


def test_appends_in_order_and_reads_the_timeline_back(any_store):
    state = opened(any_store)
    for cmd in [command("respond", message="hi"), command("propose_solution", summary="fix"),
                command("start_follow_up"), command("confirm_solution", CUSTOMER)]:
        events = decide(state, cmd, NOW)
        assert any_store.append(cmd.command_id, events) == state.version + len(events)
        state = replay([*any_store.history(state.case_id)])

    assert [e.type for e in any_store.history(state.case_id)] == [
        "CaseOpened", "ResponseSent", "SolutionProposed", "FollowUpStarted", "SolutionConfirmed", "CaseClosed"]
    assert any_store.state(state.case_id) == state


def test_a_retried_append_stores_nothing_twice(any_store):
    state = opened(any_store)
    note = command("add_note", text="once")
    events = decide(state, note, NOW)

    assert any_store.append(note.command_id, events) == 2
    assert any_store.append(note.command_id, events) == 2
    assert [e.type for e in any_store.history(state.case_id)] == ["CaseOpened", "NoteAdded"]


def test_opening_again_stores_nothing(any_store):
    state = opened(any_store)
    again = open_case(case_id=state.case_id)
    assert any_store.append(again.command_id, decide(None, again, NOW)) == 1
    assert len(any_store.history(state.case_id)) == 1


def test_concurrent_retries_of_one_command_store_it_once(any_store):
    state = opened(any_store)
    note = command("add_note", text="raced")
    events = decide(state, note, NOW)

    def attempt(_):
        try:
            return any_store.append(note.command_id, events)
        except Exception as err:  # the loser of the race sees a version conflict; Temporal retries it
            return type(err).__name__

    results = list(ThreadPoolExecutor(4).map(attempt, range(4)))
    assert 2 in results
    assert [e.type for e in any_store.history(state.case_id)] == ["CaseOpened", "NoteAdded"]
    assert any_store.append(note.command_id, events) == 2  # the retry after the conflict is a no-op


def test_an_event_for_a_case_never_opened_is_refused(any_store):
    state = opened(any_store)
    stray = decide(state, command("add_note", text="x"), NOW)
    stray = [stray[0].model_copy(update={"case_id": "never-opened"})]
    with pytest.raises(ValueError, match="no CaseOpened"):
        any_store.append("cmd-x", stray)
