"""Customers come back after a close. Within the pinned policy's reopen window a customer's reply
or a rejection of the solution reopens the case (`CaseReopened`, then the command's own fact, in
one step: its history and clocks go on, `reopen_count` counts it). After the window, or on a case
whose terms have no window, the command is refused `reopen_window_passed`, and the sender opens a
follow-up case linked to the old one (`follow_up_opening`). Closures that were never the customer's
business (duplicate, invalid, cancelled) do not reopen: those stay `case_closed`."""

from __future__ import annotations

import uuid
from datetime import datetime

from domain import commands as c
from domain import events as e
from domain.clocks import clock_events
from domain.evolve import evolve, replay_on
from domain.model import CaseState, ClosureReason, Stage
from domain.refusal import CommandRefused

# The commands that may reopen a closed case: the customer's voice, nothing staff decide alone.
REOPENING = (c.RecordCustomerReply, c.RejectSolution)
REOPENABLE = frozenset({ClosureReason.resolved, ClosureReason.resolved_unconfirmed, ClosureReason.no_response})
_FOLLOW_UP_NAMESPACE = uuid.UUID("3b0e7f14-52c9-4d8a-9e61-c2a7f0d41b95")


def may_reopen(state: CaseState | None, cmd: c.Command) -> bool:
    """Whether the command, refused `case_closed`, is of the kind that reopens (or follows up) a case."""
    # A case held to no SLA terms at all (the rules' own tests, cases opened without a policy) has
    # no reopen rules either: it stays closed, as before reopening existed.
    return (state is not None and state.is_closed and state.sla is not None and isinstance(cmd, REOPENING)
            and state.closure_reason in REOPENABLE)


def window_end(state: CaseState) -> datetime | None:
    """Until when the closed case reopens; None: it does not (no window pinned, or a zero one)."""
    window = state.sla.reopen_window if state.sla else None
    if state.closed_at is None or not window:
        return None
    return state.closed_at + window


def reopen_events(state: CaseState, cmd: c.Command, base: dict) -> list[e.Event]:
    """The reopening a command brings on a closed case, or nothing (the command is then decided as
    usual: `case_closed` on a closed case). Refused `reopen_window_passed` after the window."""
    if not may_reopen(state, cmd):
        return []
    end = window_end(state)
    at: datetime = base["at"]
    if end is None or at > end:
        assert state.closed_at is not None
        raise CommandRefused("reopen_window_passed", (
            f"command '{cmd.kind}' refused: case {state.case_id} closed {state.closed_at.isoformat()} and "  # type: ignore[attr-defined]
            + ("its terms reopen no case" if end is None else f"its reopen window ended {end.isoformat()}")
            + "; open a follow-up case (follow_up_of) instead"))
    fact = e.CaseReopened(**base, reopen_count=state.reopen_count + 1,
                          previous_closure=state.closure_reason, closed_at=state.closed_at,
                          stage=Stage.solution if isinstance(cmd, c.RejectSolution) else Stage.response)
    after = evolve(state, fact)
    implied = clock_events(state, after, fact, base)
    replay_on(after, implied)  # checks the clock events apply
    return [fact, *implied]


def follow_up_case_id(case_id: str, command_id: str) -> str:
    """The follow-up case a command opens: the same command (a retry) always names the same case."""
    return str(uuid.uuid5(_FOLLOW_UP_NAMESPACE, f"{case_id}\x1f{command_id}"))


def follow_up_opening(state: CaseState, cmd: c.Command) -> c.OpenCase:
    """A new case linked to the closed one, opened by the command that came too late to reopen it:
    the same customer, channel, category and priority; the customer's words are its description."""
    words = cmd.message if isinstance(cmd, c.RecordCustomerReply) else getattr(cmd, "reason", "")
    return c.OpenCase(
        command_id=f"follow-up:{cmd.command_id}"[:200], actor=cmd.actor, occurred_at=cmd.occurred_at,
        case_id=follow_up_case_id(state.case_id, cmd.command_id), customer=state.customer,
        channel=state.channel, category=state.category, priority=state.priority,
        subject=f"Follow-up: {state.subject}"[:500], description=words[:20_000] or state.subject,
        team=state.team, follow_up_of=state.case_id)
