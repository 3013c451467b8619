"""Domain events: the facts about a case, in past tense. The event store holds these, nothing else."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter

from domain.model import (
    Actor, Appointment, Category, Channel, ClosureReason, Customer, Frozen, Priority, SourceRef, Stage, Survey,
)
from domain.personal import PERSONAL, Path, personal_paths
from domain.sla import SlaTerms

# Free text people write (about the customer, to them, from them) is personal: the store seals it
# with the customer's key (docs/security-data.md). Engine-written texts (clock reasons) are not.
Personal = Annotated[str, PERSONAL]


class Event(Frozen):
    case_id: str
    command_id: str
    # The digest of the command that decided it: the same command id with another digest is refused.
    command_digest: str = ""
    actor: Actor
    on_behalf_of: str | None = None  # the customer, when staff or a gateway acted for them
    at: datetime  # when it happened
    # When the engine decided it: business time. For an imported event, the log's instant, at which
    # the importer decided it (docs/import.md).
    recorded_at: datetime
    # When an import stored it (domain/store.py import_cases); None for an event the engine decided
    # live, which the store took at its recorded_at. With recorded_at it answers both "what had
    # happened by T" and "what did the store know at T" (projections/asof.py). Left out of the JSON
    # when None: live events (and every event stored before it existed) read as they always did.
    imported_at: datetime | None = Field(default=None, exclude_if=lambda v: v is None)


class CaseOpened(Event):
    type: Literal["CaseOpened"] = "CaseOpened"
    source: SourceRef | None
    customer: Customer
    channel: Channel
    category: Category
    priority: Priority
    subject: Personal
    description: Personal
    assignee: str | None = None
    team: str | None = None
    follow_up_of: str | None = None  # the closed case this one follows up (domain/reopen.py)


class CaseReopened(Event):
    """A closed case taken up again: the customer replied or rejected the solution within the
    policy's reopen window. The command's own fact follows it, in the same step."""

    type: Literal["CaseReopened"] = "CaseReopened"
    reopen_count: int
    previous_closure: ClosureReason
    closed_at: datetime
    stage: Stage  # solution, for the rejection that follows; response, for a reply awaiting an answer


class ClarificationRequested(Event):
    type: Literal["ClarificationRequested"] = "ClarificationRequested"
    question: Personal
    return_stage: Stage


class CustomerReplied(Event):
    type: Literal["CustomerReplied"] = "CustomerReplied"
    message: Personal
    resumed_stage: Stage | None  # set when the reply ends a clarification round


class ResponseSent(Event):
    type: Literal["ResponseSent"] = "ResponseSent"
    message: Personal
    first_response: bool


class CaseRetriaged(Event):
    type: Literal["CaseRetriaged"] = "CaseRetriaged"
    priority: Priority
    category: Category
    previous_priority: Priority
    previous_category: Category
    reason: Personal


class CaseReassigned(Event):
    type: Literal["CaseReassigned"] = "CaseReassigned"
    assignee: str | None
    team: str | None
    previous_assignee: str | None
    previous_team: str | None
    reason: Personal


class SolutionProposed(Event):
    type: Literal["SolutionProposed"] = "SolutionProposed"
    summary: Personal


class SolutionRevised(Event):
    type: Literal["SolutionRevised"] = "SolutionRevised"
    summary: Personal
    revision: int


class FollowUpStarted(Event):
    type: Literal["FollowUpStarted"] = "FollowUpStarted"
    due: datetime | None  # an explicit follow-up period's end, if the agent set one
    callback_due: datetime | None = None  # the first callback, per the pinned follow-up policy


class CallbackAttempted(Event):
    """The engine contacted the customer: a survey request, or a callback task for an agent."""

    type: Literal["CallbackAttempted"] = "CallbackAttempted"
    attempt: int
    channel: str  # survey_request or agent_callback
    survey_skipped: str = ""  # why no survey was sent, if none was
    next_due: datetime  # the next attempt, or the end of the wait after the last


class SurveyRecorded(Event):
    type: Literal["SurveyRecorded"] = "SurveyRecorded"
    survey: Survey


class RectificationRequired(Event):
    type: Literal["RectificationRequired"] = "RectificationRequired"
    reason: str


class RectificationRecorded(Event):
    type: Literal["RectificationRecorded"] = "RectificationRecorded"
    note: Personal


class ReplyTimeAgreed(Event):
    type: Literal["ReplyTimeAgreed"] = "ReplyTimeAgreed"
    reply_by: datetime
    note: Personal


class AppointmentBooked(Event):
    type: Literal["AppointmentBooked"] = "AppointmentBooked"
    appointment: Appointment


class AppointmentConfirmed(Event):
    type: Literal["AppointmentConfirmed"] = "AppointmentConfirmed"


class ServiceReportRecorded(Event):
    type: Literal["ServiceReportRecorded"] = "ServiceReportRecorded"
    work_done: Personal
    parts_used: list[str]


class SolutionConfirmed(Event):
    type: Literal["SolutionConfirmed"] = "SolutionConfirmed"
    comment: Personal


class SolutionRejected(Event):
    type: Literal["SolutionRejected"] = "SolutionRejected"
    reason: Personal
    reopen_count: int


class NoteAdded(Event):
    type: Literal["NoteAdded"] = "NoteAdded"
    text: Personal


class CaseClosed(Event):
    type: Literal["CaseClosed"] = "CaseClosed"
    reason: ClosureReason
    note: Personal


class SlaPolicyPinned(Event):
    type: Literal["SlaPolicyPinned"] = "SlaPolicyPinned"
    terms: SlaTerms


class SlaClockStarted(Event):
    type: Literal["SlaClockStarted"] = "SlaClockStarted"
    clock: str
    target: timedelta
    due: datetime
    cycle: int = 0  # next_response: 1 for the first customer message after the first response, ...


class SlaClockPaused(Event):
    type: Literal["SlaClockPaused"] = "SlaClockPaused"
    clock: str
    reason: str


class SlaClockResumed(Event):
    type: Literal["SlaClockResumed"] = "SlaClockResumed"
    clock: str
    due: datetime
    reason: str


class SlaClockWarned(Event):
    type: Literal["SlaClockWarned"] = "SlaClockWarned"
    clock: str
    share: float
    due: datetime


class SlaClockBreached(Event):
    type: Literal["SlaClockBreached"] = "SlaClockBreached"
    clock: str
    due: datetime


class SlaClockMet(Event):
    type: Literal["SlaClockMet"] = "SlaClockMet"
    clock: str
    late: bool


class SlaClockRetargeted(Event):
    """New terms for a clock (re-triage, or a supervisor re-applying the policy): it keeps the business
    time it has used and gets the new target; a met clock stays met with the target it will resume on."""

    type: Literal["SlaClockRetargeted"] = "SlaClockRetargeted"
    clock: str
    target: timedelta
    elapsed: timedelta
    due: datetime | None
    reason: Personal = ""  # carries a supervisor's reason


class SlaClockCancelled(Event):
    type: Literal["SlaClockCancelled"] = "SlaClockCancelled"
    clock: str
    reason: str


class CaseEscalated(Event):
    type: Literal["CaseEscalated"] = "CaseEscalated"
    level: int
    level_name: str
    owner: str | None
    cause: str  # breach, warning, emergency, supervisor
    clock: str | None = None
    reason: Personal = ""  # a supervisor's words, or the engine's cause


class EscalationAcknowledged(Event):
    type: Literal["EscalationAcknowledged"] = "EscalationAcknowledged"
    level: int
    note: Personal


class CaseDeEscalated(Event):
    type: Literal["CaseDeEscalated"] = "CaseDeEscalated"
    level: int
    level_name: str
    owner: str | None
    reason: Personal


AnyEvent = Annotated[
    Union[
        CaseOpened, ClarificationRequested, CustomerReplied, ResponseSent, CaseRetriaged,
        CaseReassigned, SolutionProposed, SolutionRevised, FollowUpStarted, SolutionConfirmed,
        SolutionRejected, NoteAdded, CaseClosed, SlaPolicyPinned, SlaClockStarted, SlaClockPaused,
        SlaClockResumed, SlaClockWarned, SlaClockBreached, SlaClockMet, SlaClockCancelled,
        SlaClockRetargeted, CaseEscalated, EscalationAcknowledged, CaseDeEscalated, CallbackAttempted,
        SurveyRecorded, RectificationRequired, RectificationRecorded, ReplyTimeAgreed, AppointmentBooked,
        AppointmentConfirmed, ServiceReportRecorded, CaseReopened,
    ],
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)
EVENT_TYPES: tuple[type[Event], ...] = AnyEvent.__origin__.__args__  # type: ignore[attr-defined]

# The personal fields of each event type, by type name: what the store seals and the projections drop.
PERSONAL_PATHS: dict[str, tuple[Path, ...]] = {
    t.model_fields["type"].default: personal_paths(t) for t in EVENT_TYPES}
