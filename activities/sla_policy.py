"""Reading the SLA policy file when a case opens: its terms are then pinned on the case for good."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from casework.policy import load_policy
from domain.model import Category, Channel, Priority, Tier
from domain.sla import SlaTerms


class TermsFor(BaseModel):
    priority: Priority
    tier: Tier
    category: Category
    channel: Channel


class SlaPolicyActivities:
    def __init__(self, policy_path: str | None = None) -> None:
        self.policy_path = policy_path

    # Read on every opening, so an edited policy applies to new cases and never to running ones.
    @activity.defn(name="load_sla_terms")
    def load_sla_terms(self, inp: TermsFor) -> SlaTerms:
        return load_policy(self.policy_path).terms_for(inp.priority, inp.tier, inp.category, inp.channel)
