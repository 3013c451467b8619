"""The public Temporal contract: names and payloads any SDK or the `temporal` CLI can use."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from temporalio.common import SearchAttributeKey

from domain.commands import OpenCase
from domain.model import Actor, CaseState

WORKFLOW_TYPE = "ServiceCase"
DEFAULT_TASK_QUEUE = "casework"
OPEN_UPDATE = "open"  # idempotent: returns the case, opening it on first use
STATE_QUERY = "state"
TIMELINE_QUERY = "timeline"
CLOCKS_QUERY = "clocks"  # each SLA clock: target, elapsed business time, paused time, due, state
# The customer was forgotten: the run drops their personal fields and continues as new (casework.forget).
FORGET_UPDATE = "forget_personal_data"
# Every other update is a lifecycle command; its name is the command's `kind`.

TIMELINE_KEPT = 500  # entries carried in the workflow; the full timeline is in the event store
# Command ids (with their digests) a run carries; past this a case answers retries from the store.
KNOWN_COMMAND_IDS = 20_000


class Limits(BaseModel):
    """When a long case continues as new, before Temporal's per-run limits (2,000 updates, 51,200 events)."""

    max_commands_per_run: int = Field(default=1000, ge=1, le=1900)
    max_history_events: int = Field(default=10_000, ge=50, le=40_000)


class TimelineEntry(BaseModel):
    type: str
    at: datetime
    actor_id: str
    role: str
    stage: str
    command_id: str


class ForgetPersonalData(BaseModel):
    """Drop the customer's personal fields from the run's state, then continue as new, so the case's
    current history no longer carries them (docs/security-data.md)."""

    customer_id: str
    actor: Actor


class CaseInput(BaseModel):
    """Workflow input. A new case gives `open`; a continued run also carries what it had."""

    open: OpenCase | None = None
    state: CaseState | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    known_commands: dict[str, str] = Field(default_factory=dict)  # command id -> digest, oldest first
    forgot_commands: bool = False  # some ids fell out of `known_commands`: the store still knows them
    limits: Limits = Field(default_factory=Limits)


# Operational listing in the Temporal UI and `temporal workflow list` (no personal data here).
CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
CASE_PRIORITY = SearchAttributeKey.for_keyword("CasePriority")
CASE_TIER = SearchAttributeKey.for_keyword("CaseTier")
CASE_ESCALATION_LEVEL = SearchAttributeKey.for_int("CaseEscalationLevel")
CASE_SLA_BREACHED = SearchAttributeKey.for_bool("CaseSlaBreached")
CASE_ASSIGNEE = SearchAttributeKey.for_keyword("CaseAssignee")  # a staff id, not a name
CASE_TEAM = SearchAttributeKey.for_keyword("CaseTeam")
CASE_CATEGORY = SearchAttributeKey.for_keyword("CaseCategory")
CASE_NEXT_DUE = SearchAttributeKey.for_datetime("CaseNextDue")  # earliest breach due of a running clock
SEARCH_ATTRIBUTES = (CASE_STAGE, CASE_PRIORITY, CASE_TIER, CASE_ESCALATION_LEVEL, CASE_SLA_BREACHED,
                     CASE_ASSIGNEE, CASE_TEAM, CASE_CATEGORY, CASE_NEXT_DUE)


def case_summary(subject: str, customer_name: str) -> str:
    """What the Temporal UI lists for a case (its workflow's summary and current details): the subject
    and the customer, which are personal data. They live where the case's own payloads live (its
    history, sealed by the payload codec); a run started after the customer is forgotten carries
    "[forgotten]" (docs/security-data.md)."""
    return f"{subject[:180]} — {customer_name[:80]}"
