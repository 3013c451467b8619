"""Which timer a case waits on next, and which of its own commands it sends when that falls due.
Pure, so the workflow only sleeps and sends; the rules of what is due stay here."""

from __future__ import annotations

from datetime import datetime

from domain.clocks import next_deadline
from domain.model import CaseState, Stage


def next_timer(state: CaseState) -> tuple[datetime, str] | None:
    """(when, command kind) of the earliest deadline that would do something, or None."""
    due: list[tuple[datetime, str]] = []
    clock = next_deadline(state)
    if clock is not None:
        due.append((clock, "check_deadlines"))
    if state.stage is Stage.follow_up and not state.rectification_pending:
        # While a bad result awaits its rectification, the case may not close: its team lead has it,
        # so neither the last callback nor the follow-up period can end it.
        if state.callback_due is not None:
            due.append((state.callback_due, "attempt_callback"))
        if state.follow_up_due is not None:
            due.append((state.follow_up_due, "expire_follow_up"))
    return min(due, default=None)
