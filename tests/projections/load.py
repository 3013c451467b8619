"""Events appended under load, counted as they are appended (not through the projection), and the
reporting tables compared with a rebuild into fresh ones."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from casework.history import write_history
from casework.policy import load_policy
from domain.commands import AddNote, OpenCase
from domain.lifecycle import decide, replay_on
from domain.model import Actor, Role
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view
from projections.schema import TABLES
from projections.view import ReportView

GATEWAY = Actor(id="gateway", role=Role.system)


@dataclass
class Appended:
    """What the load wrote: the cases it opened and the NoteAdded events it appended."""

    case_ids: list[str] = field(default_factory=list)
    notes: int = 0


def append_notes(store: CaseStore, cases: int, notes_per_case: int, seed: int, into: Appended) -> None:
    """Open `cases` cases and add notes to each, one command (one append) per note."""
    rng = random.Random(seed)
    policy = load_policy()
    now = datetime(2026, 4, 1, 9, 0, tzinfo=UTC) + timedelta(minutes=seed)
    for i in range(cases):
        opening = OpenCase(
            command_id=str(uuid.UUID(int=rng.getrandbits(128))), actor=GATEWAY,
            case_id=str(uuid.UUID(int=rng.getrandbits(128))), subject=f"Noted case {seed}-{i}",
            priority="normal", category="enquiry", channel="email", team="east",
            customer={"id": f"n{seed}-{i}", "name": f"Customer {seed}-{i}", "tier": "B"})
        terms = policy.terms_for(opening.priority, opening.customer.tier, opening.category, opening.channel)
        events = decide(None, opening, now, terms)
        store.append(opening.command_id, events)
        state = replay_on(None, events)
        into.case_ids.append(state.case_id)
        for j in range(notes_per_case):
            note = AddNote(command_id=str(uuid.UUID(int=rng.getrandbits(128))),
                           actor=Actor(id=f"agent-{j % 3}", role=Role.agent), text=f"note {j}")
            events = decide(state, note, now + timedelta(minutes=j + 1))
            store.append(note.command_id, events)
            into.notes += sum(e.type == "NoteAdded" for e in events)
            state = replay_on(state, events)


class Load(threading.Thread):
    """Appends chunks of varied cases and noted cases until stopped (or `chunks` are written)."""

    def __init__(self, store: CaseStore, chunks: int | None = None, pause: float = 0.02, seed: int = 1000,
                 cases: int = 3):
        super().__init__(name="load", daemon=True)
        self.store, self.chunks, self.pause, self.seed, self.cases = store, chunks, pause, seed, cases
        self.appended = Appended()
        self.stop = threading.Event()
        self.written = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set() and (self.chunks is None or self.written < self.chunks):
                self.appended.case_ids += write_history(self.store, cases=self.cases, seed=self.seed + self.written)
                append_notes(self.store, cases=max(1, self.cases - 1), notes_per_case=3,
                             seed=self.seed + self.written, into=self.appended)
                self.written += 1
                time.sleep(self.pause)
        except BaseException as err:  # noqa: BLE001 - reported by finish()
            self.error = err

    def finish(self, timeout: float = 60) -> Appended:
        """Stop appending (a load of so many chunks first writes them all); what was appended."""
        if self.chunks is None:
            self.stop.set()
        self.join(timeout)
        assert not self.is_alive(), "the load did not stop"
        if self.error is not None:
            raise self.error
        return self.appended


def head(store: CaseStore) -> int:
    return store.recorder.max_notification_id() or 0


def events_in_log(store: CaseStore) -> int:
    return len(store.recorder.select_notifications(0, 10**7))


def wait_caught_up(projection: ReportProjection, timeout: float = 60) -> None:
    """Until the projection's position is the log's head (nothing is being appended any more)."""
    deadline = time.monotonic() + timeout
    while projection.position() != head(projection.store):
        assert time.monotonic() < deadline, (
            f"projection at {projection.position()} of {head(projection.store)} after {timeout} s")
        time.sleep(0.05)


def table_rows(view: ReportView) -> dict[str, list[str]]:
    """Every reporting table, every row, in a canonical order."""
    return {name: sorted(json.dumps(r, sort_keys=True, default=str) for r in view.query(f"SELECT * FROM {{{name}}}"))
            for name in TABLES}


def assert_equal_to_a_fresh_rebuild(store: CaseStore, view: ReportView, fresh_env: dict[str, str]) -> None:
    """The live tables equal, row for row, tables built by one projection from scratch, alone."""
    fresh = open_view(fresh_env)
    single = ReportProjection(store, fresh, batch_size=1000)
    single.catch_up()
    live, rebuilt = table_rows(view), table_rows(fresh)
    for name in TABLES:
        assert live[name] == rebuilt[name], f"table {name}: {len(live[name])} rows live, {len(rebuilt[name])} rebuilt"
    assert sum(len(rows) for rows in live.values()) > 0


def assert_counts_match(view: ReportView, store: CaseStore, appended: Appended) -> None:
    """The tables against what was appended, counted at the source."""
    cases = view.query("SELECT case_id, notes_count, events FROM {cases}")
    assert sorted(r["case_id"] for r in cases) == sorted(appended.case_ids)
    assert sum(r["notes_count"] for r in cases) == appended.notes
    noted = view.query("SELECT COUNT(*) AS n FROM {agent_activity} WHERE event_type = 'NoteAdded'")[0]["n"]
    assert noted == appended.notes
    assert sum(r["events"] for r in cases) == events_in_log(store)
