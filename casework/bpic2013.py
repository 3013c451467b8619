"""Replaying the BPI Challenge 2013 "closed problems" log (Volvo IT Belgium) as casework commands.

How its statuses map (see README, "Real traces"):
- first row of a trace             -> open (occurred_at = its timestamp; impact -> priority)
- Queued-Awaiting Assignment       -> reassign to the row's support team
- Accepted-In Progress             -> the case's first response; after a Wait, the customer's reply;
                                      with another handler, a reassignment; otherwise a note
- Accepted-Assigned                -> reassign to the row's handler
- Accepted-Wait                    -> request clarification (a further Wait while waiting: a note)
- Completed-* followed by more     -> propose solution + start follow-up; the next activity rejects it
- Completed-Closed, last row       -> propose solution (if none stands) + start follow-up + confirm
- Unmatched-Unmatched              -> a note
The log records no customer confirmation; its final closure stands for it.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from domain.commands import COMMAND_ADAPTER, CheckDeadlines, Command, OpenCase
from domain.lifecycle import decide, replay_on
from domain.model import ENGINE, Actor, Role
from domain.ids import case_id_for
from domain.sla import SlaPolicy
from domain.store import CaseStore


SOURCE_SYSTEM = "bpic2013"
PRIORITY = {"Major": "urgent", "High": "high", "Medium": "normal", "Low": "low"}


@dataclass
class Expected:
    """What a trace says about its case once replayed."""

    opened_at: datetime
    closed_at: datetime
    priority: str
    reopen_count: int
    clarification_rounds: int
    first_response_at: datetime | None


@dataclass
class Replay:
    external_id: str
    open: OpenCase
    commands: list[Command] = field(default_factory=list)
    expected: Expected | None = None


def read_traces(path: str | Path) -> dict[str, list[dict[str, str]]]:
    traces: dict[str, list[dict[str, str]]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            traces[row["Case ID"]].append(row)
    return dict(traces)


def _at(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["Complete Timestamp"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def replay_for(external_id: str, rows: list[dict[str, str]]) -> Replay:
    first = rows[0]
    customer = Actor(id=first["organization involved"] or "unknown", role=Role.customer)
    opening = OpenCase(
        command_id=f"{SOURCE_SYSTEM}:{external_id}:0", actor=Actor(id=first["Resource"], role=Role.agent),
        occurred_at=_at(first), source={"system": SOURCE_SYSTEM, "external_id": external_id},
        customer={"id": customer.id, "name": customer.id}, channel="other", category="problem",
        priority=PRIORITY.get(first["impact"], "normal"), subject=f"Problem on {first['product']}",
        team=first["org:group"], assignee=first["Resource"])
    replay = Replay(external_id, opening)
    waiting = solved = responded = False
    assignee, reopens, rounds, first_response = first["Resource"], 0, 0, None

    for i, row in enumerate(rows):
        status, at, last = row["Activity"], _at(row), i == len(rows) - 1
        agent = Actor(id=row["Resource"], role=Role.agent)

        def send(kind: str, actor: Actor = agent, **fields: object) -> None:
            replay.commands.append(COMMAND_ADAPTER.validate_python({
                "kind": kind, "actor": actor, "occurred_at": at,
                "command_id": f"{SOURCE_SYSTEM}:{external_id}:{i + 1}:{len(replay.commands)}", **fields}))

        if status.startswith("Completed"):
            if waiting:
                send("record_customer_reply", customer, message="(wait ended)")
                waiting = False
            if not solved:
                send("propose_solution", summary=f"{status} by {row['Resource']}")
                send("start_follow_up")
                solved = True
            if last:
                send("confirm_solution", customer, comment=status)
            continue
        if solved:  # work resumed after a completion: the solution did not hold
            send("reject_solution", customer, reason=f"reopened: {status}")
            solved, reopens = False, reopens + 1
        if status == "Queued-Awaiting Assignment":
            if i > 0:
                send("reassign", team=row["org:group"], reason="queued: awaiting assignment")
        elif status == "Accepted-Wait":
            if waiting:
                send("add_note", text="still waiting")
            else:
                send("request_clarification", question=f"waiting ({row['Resource']})")
                waiting, rounds = True, rounds + 1
        elif status == "Accepted-In Progress":
            if waiting:
                send("record_customer_reply", customer, message="(wait ended)")
                waiting = False
            if not responded:
                send("respond", message=f"in progress with {row['Resource']}")
                responded, first_response = True, at
            elif row["Resource"] != assignee:
                send("reassign", assignee=row["Resource"], team=row["org:group"], reason="taken over")
            else:
                send("add_note", text="in progress")
        elif status == "Accepted-Assigned":
            send("reassign", assignee=row["Resource"], team=row["org:group"], reason="assigned")
        else:
            send("add_note", text=status)
        if status.startswith("Accepted") and row["Resource"] != assignee:
            assignee = row["Resource"]

    replay.expected = Expected(opened_at=_at(first), closed_at=_at(rows[-1]),
                               priority=opening.priority.value, reopen_count=reopens,
                               clarification_rounds=rounds, first_response_at=first_response)
    return replay


def import_history(store: CaseStore, replays: list[Replay], policy: SlaPolicy | None = None) -> int:
    """Load finished traces straight into the event store, as history (no workflow runs for them).

    Each command is decided by the same rules at its own recorded time, with the SLA clocks checked
    just before it, so breaches land when they really happened. Returns the events stored.
    """
    stored = 0
    for replay in replays:
        opening = replay.open.model_copy(update={"case_id": case_id_for(replay.open.source)})
        terms = policy.terms_for(opening.priority, opening.customer.tier, opening.category,
                                 opening.channel) if policy else None
        now = opening.occurred_at
        events = decide(None, opening, now, terms)
        state = replay_on(None, events)
        stored += _append(store, replay.open.command_id, events)
        for cmd in replay.commands:
            now = cmd.occurred_at
            tick = decide(state, CheckDeadlines(command_id=f"{cmd.command_id}:clock", actor=ENGINE), now)
            if tick:
                stored += _append(store, f"{cmd.command_id}:clock", tick)
                state = replay_on(state, tick)
            events = decide(state, cmd, now)
            stored += _append(store, cmd.command_id, events)
            state = replay_on(state, events)
    return stored


def _append(store: CaseStore, command_id: str, events: list) -> int:
    store.append(command_id, events)
    return len(events)
