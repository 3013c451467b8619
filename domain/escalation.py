"""Who a case escalates to: one level up the policy's ladder; emergencies to the top at once;
key accounts to their dedicated owner first."""

from __future__ import annotations

from domain import events as e
from domain.model import CaseState, Priority, Tier

KEY_ACCOUNT_OWNER = "key_account_owner"


def is_emergency(state: CaseState) -> bool:
    assert state.sla is not None
    return state.priority is Priority.urgent or state.category in state.sla.emergency_categories


def top_level(state: CaseState) -> int:
    assert state.sla is not None
    return len(state.sla.ladder) - 1


def escalation_to(state: CaseState, base: dict, level: int, cause: str, owner: str | None = None,
                  clock: str | None = None, reason: str = "") -> e.CaseEscalated:
    """An escalation to a ladder level, reassigned to that level's owner unless one is named."""
    assert state.sla is not None
    step = state.sla.ladder[level]
    return e.CaseEscalated(**base, level=level, level_name=step.name, owner=owner or step.owner, cause=cause,
                           clock=clock, reason=reason or (f"{clock} {cause}" if clock else cause))


def escalation_for(state: CaseState, base: dict, cause: str, clock: str | None = None,
                   reason: str = "") -> e.CaseEscalated | None:
    """The next automatic escalation, or None when the case is already at the top of the ladder."""
    level, top = state.escalation_level, top_level(state)
    if level >= top:
        return None
    if is_emergency(state):
        return escalation_to(state, base, top, cause, clock=clock, reason=reason)
    owner = state.customer.dedicated_owner
    if level == 0 and state.customer.tier is Tier.key_account and owner:
        step = escalation_to(state, base, 1, cause, owner=owner, clock=clock, reason=reason)
        return step.model_copy(update={"level_name": KEY_ACCOUNT_OWNER})
    return escalation_to(state, base, level + 1, cause, clock=clock, reason=reason)
