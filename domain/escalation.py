"""Who a case escalates to: one level up the policy's ladder; emergencies to the top at once;
key accounts to their dedicated owner first."""

from __future__ import annotations

from domain import events as e
from domain.model import CaseState, Priority, Tier

KEY_ACCOUNT_OWNER = "key_account_owner"


def is_emergency(state: CaseState) -> bool:
    assert state.sla is not None
    return state.priority is Priority.urgent or state.category in state.sla.emergency_categories


def escalation_for(state: CaseState, base: dict, cause: str, clock: str | None = None,
                   reason: str = "") -> e.CaseEscalated | None:
    """The next automatic escalation, or None when the case is already at the top of the ladder."""
    assert state.sla is not None
    ladder, level = state.sla.ladder, state.escalation_level
    top = len(ladder) - 1
    if level >= top:
        return None
    reason = reason or (f"{clock} {cause}" if clock else cause)
    if is_emergency(state):
        return e.CaseEscalated(**base, level=top, level_name=ladder[top].name, owner=ladder[top].owner,
                               cause=cause, clock=clock, reason=reason)
    owner = state.customer.dedicated_owner
    if level == 0 and state.customer.tier is Tier.key_account and owner:
        return e.CaseEscalated(**base, level=1, level_name=KEY_ACCOUNT_OWNER, owner=owner, cause=cause,
                               clock=clock, reason=reason)
    return e.CaseEscalated(**base, level=level + 1, level_name=ladder[level + 1].name,
                           owner=ladder[level + 1].owner, cause=cause, clock=clock, reason=reason)
