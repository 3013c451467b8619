"""Commands: what backends, agents, customers and supervisors ask a case to do.

Each command's `kind` is also its Temporal update name (see docs/contract.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, FiniteFloat, TypeAdapter, model_validator

from domain.model import (
    Actor, Category, Channel, ClosureReason, Customer, Frozen, Instant, Priority, Role, SourceRef, Stage,
)

Text = Annotated[str, Field(min_length=1, max_length=20_000)]

# Who may send a command and in which stages is declared on the command itself (STAGES, ROLES).
OPEN_STAGES = frozenset(s for s in Stage if s is not Stage.closed)
STAFF = frozenset({Role.agent, Role.supervisor, Role.system})
# An agent on the phone, or a gateway, may report what the customer said.
FOR_CUSTOMER = frozenset({Role.customer, Role.agent, Role.system})
SUPERVISOR = frozenset({Role.supervisor})
ENGINE_ONLY = frozenset({Role.system})


# C0 and C1 control characters except tab and line breaks: NUL and friends break databases, terminals
# and reports far from where they came in, so they are refused where they come in.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _strings(value: Any, path: str = "") -> Any:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k, path)
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


class Command(Frozen):
    command_id: str = Field(min_length=1, max_length=200)
    actor: Actor
    # When it happened, if the sender knows better than the engine's clock (imports, offline agents).
    occurred_at: Instant | None = None
    # Who sends it and their HMAC over what it asks (domain/principals.py): the credential, not the
    # intent, so neither is part of the digest (a signature cannot sign itself).
    principal: str = Field(default="", max_length=200)
    signature: str = Field(default="", max_length=200, repr=False)
    # Fields that are not the sender's intent (read by the engine just before deciding): a retry may
    # carry another value and is still the same command.
    NOT_INTENT: ClassVar[frozenset[str]] = frozenset()
    STAGES: ClassVar[frozenset[Stage]] = frozenset()  # the stages it is allowed in
    ROLES: ClassVar[frozenset[Role]] = frozenset()  # the roles that may send it

    @model_validator(mode="after")
    def _timer_ids_are_the_engines(self) -> Command:
        # The case's own timers name their commands `timer:<kind>@<version>`; a sender taking such an
        # id could make a due timer look like a reused id and silence the case's deadlines.
        if self.command_id.startswith(TIMER_ID_PREFIX) and getattr(self, "kind", None) not in TIMER_COMMANDS:
            raise ValueError(f"command ids starting with '{TIMER_ID_PREFIX}' are reserved for the case's timers")
        return self

    @model_validator(mode="after")
    def _no_control_characters(self) -> Command:
        for path, text in _strings(self.model_dump(mode="json")):
            if _CONTROL.search(text):
                raise ValueError(f"field '{path or 'key'}' contains a control character "
                                 f"({_CONTROL.search(text).group()!r}); only tab and line breaks are allowed")
        return self

    def digest(self) -> str:
        """What the command asks, without its id: the same id with another digest is another command."""
        intent = self.model_dump(mode="json", exclude={"command_id", "principal", "signature", *self.NOT_INTENT})
        return hashlib.sha256(json.dumps(intent, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


class OpenCase(Command):
    """Open a case; the same source reference always opens the same case."""

    kind: Literal["open"] = "open"
    case_id: str | None = Field(default=None, max_length=200)
    source: SourceRef | None = None
    customer: Customer
    channel: Channel
    category: Category
    priority: Priority = Priority.normal
    subject: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=20_000)
    assignee: str | None = None
    team: str | None = None
    follow_up_of: str | None = Field(default=None, max_length=200)  # a closed case this one follows up


class RequestClarification(Command):
    """Ask the customer for missing information; the case waits on them."""

    kind: Literal["request_clarification"] = "request_clarification"
    # Asked again while waiting (a reminder, a further question) keeps the same round open.
    STAGES: ClassVar[frozenset[Stage]] = (
        frozenset({Stage.intake, Stage.needs_clarification, Stage.response, Stage.solution}))
    ROLES: ClassVar[frozenset[Role]] = STAFF
    question: Text


class RecordCustomerReply(Command):
    """Record what the customer said; ends a clarification round."""

    kind: Literal["record_customer_reply"] = "record_customer_reply"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = FOR_CUSTOMER
    message: Text


class Respond(Command):
    """Send the customer a response (the first one ends intake)."""

    kind: Literal["respond"] = "respond"
    # A reminder while waiting on the customer, an answer to their question during follow-up.
    STAGES: ClassVar[frozenset[Stage]] = (
        frozenset({Stage.intake, Stage.needs_clarification, Stage.response, Stage.solution, Stage.follow_up}))
    ROLES: ClassVar[frozenset[Role]] = STAFF
    message: Text


class Retriage(Command):
    """Change priority and/or category, with a reason."""

    kind: Literal["retriage"] = "retriage"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = STAFF
    priority: Priority | None = None
    category: Category | None = None
    reason: Text

    @model_validator(mode="after")
    def _changes_something(self) -> Retriage:
        if self.priority is None and self.category is None:
            raise ValueError("retriage needs a new priority or a new category")
        return self


class Reassign(Command):
    """Hand the case to another agent and/or team."""

    kind: Literal["reassign"] = "reassign"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = STAFF
    assignee: str | None = Field(default=None, max_length=200)
    team: str | None = Field(default=None, max_length=200)
    reason: str = Field(default="", max_length=2_000)

    @model_validator(mode="after")
    def _names_someone(self) -> Reassign:
        if not self.assignee and not self.team:
            raise ValueError("reassign needs an assignee or a team")
        return self


class ProposeSolution(Command):
    """Propose a solution; the case moves to solution."""

    kind: Literal["propose_solution"] = "propose_solution"
    STAGES: ClassVar[frozenset[Stage]] = frozenset({Stage.intake, Stage.response})
    ROLES: ClassVar[frozenset[Role]] = STAFF
    summary: Text


class ReviseSolution(Command):
    """Revise the proposed solution."""

    kind: Literal["revise_solution"] = "revise_solution"
    STAGES: ClassVar[frozenset[Stage]] = frozenset({Stage.solution, Stage.follow_up})
    ROLES: ClassVar[frozenset[Role]] = STAFF
    summary: Text


class StartFollowUp(Command):
    """Deliver the solution; the engine calls the customer back per policy (or waits a set period)."""

    kind: Literal["start_follow_up"] = "start_follow_up"
    STAGES: ClassVar[frozenset[Stage]] = frozenset({Stage.solution})
    ROLES: ClassVar[frozenset[Role]] = STAFF
    # An explicit period instead of the policy's callbacks: when it runs out without an answer, the
    # case closes as resolved_unconfirmed.
    follow_up_hours: float | None = Field(default=None, gt=0, le=24 * 365)


class SurveyAnswer(Frozen):
    """Scores per dimension on the stated scale; converted to 0-100, the original kept."""

    scale: Literal["0-100", "1-5", "1-10"] = "0-100"
    # Finite: NaN or infinity (which Python's JSON reader accepts) is no score and compares with no scale.
    scores: dict[str, FiniteFloat] = Field(min_length=1)
    overall: FiniteFloat | None = None  # default: the mean of the dimensions
    safety_incident: bool = False  # the customer reports a safety incident (the seeds' 100-1=0 rule)
    comment: str = Field(default="", max_length=20_000)


class ConfirmSolution(Command):
    """The customer confirms the solution, with a survey if they gave one; the case closes as resolved."""

    kind: Literal["confirm_solution"] = "confirm_solution"
    STAGES: ClassVar[frozenset[Stage]] = frozenset({Stage.solution, Stage.follow_up})
    ROLES: ClassVar[frozenset[Role]] = FOR_CUSTOMER
    comment: str = Field(default="", max_length=20_000)
    survey: SurveyAnswer | None = None


class RejectSolution(Command):
    """The customer says it is not solved (a survey may come with it); the case reopens to response."""

    kind: Literal["reject_solution"] = "reject_solution"
    STAGES: ClassVar[frozenset[Stage]] = frozenset({Stage.solution, Stage.follow_up})
    ROLES: ClassVar[frozenset[Role]] = FOR_CUSTOMER
    reason: Text
    survey: SurveyAnswer | None = None


class RecordRectification(Command):
    """After a bad survey result: what was put right. The case may close only once this is recorded."""

    kind: Literal["record_rectification"] = "record_rectification"
    # The team lead the bad result escalated to records it: a supervisor, or an agent in that post.
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = frozenset({Role.supervisor, Role.agent})
    note: Text


class AgreeReplyTime(Command):
    """A complaint that cannot be solved at once: the reply time agreed with the customer."""

    kind: Literal["agree_reply_time"] = "agree_reply_time"
    STAGES: ClassVar[frozenset[Stage]] = (
        frozenset({Stage.intake, Stage.needs_clarification, Stage.response, Stage.solution}))
    ROLES: ClassVar[frozenset[Role]] = STAFF
    reply_by: Instant
    note: str = Field(default="", max_length=20_000)


class BookAppointment(Command):
    """Book an on-site appointment: time, place and need; the customer then confirms it."""

    kind: Literal["book_appointment"] = "book_appointment"
    STAGES: ClassVar[frozenset[Stage]] = frozenset({Stage.intake, Stage.response, Stage.solution})
    ROLES: ClassVar[frozenset[Role]] = STAFF
    at: Instant
    place: str = Field(min_length=1, max_length=500)
    need: Text


class ConfirmAppointment(Command):
    """The customer confirms the appointment."""

    kind: Literal["confirm_appointment"] = "confirm_appointment"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = FOR_CUSTOMER


class RecordServiceReport(Command):
    """The on-site visit's report: what was done, parts used."""

    kind: Literal["record_service_report"] = "record_service_report"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = STAFF
    work_done: Text
    # Bounded like every text: an unbounded list made one command larger than a Temporal payload may be.
    parts_used: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list, max_length=200)


class AddNote(Command):
    """Add an internal note."""

    kind: Literal["add_note"] = "add_note"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = STAFF
    text: Text


class CloseCase(Command):
    """Close without a confirmed solution: duplicate, invalid, cancelled or no response."""

    kind: Literal["close"] = "close"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = STAFF
    reason: ClosureReason
    note: str = Field(default="", max_length=20_000)


class EscalateCase(Command):
    """A supervisor escalates: to a ladder level (default: one up) and/or a named owner."""

    kind: Literal["escalate"] = "escalate"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = SUPERVISOR
    level: int | None = Field(default=None, ge=1)
    owner: str | None = Field(default=None, max_length=200)
    reason: Text


class AcknowledgeEscalation(Command):
    """A supervisor acknowledges the current escalation."""

    kind: Literal["acknowledge"] = "acknowledge"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = SUPERVISOR
    note: str = Field(default="", max_length=20_000)


class DeEscalate(Command):
    """A supervisor takes the case one escalation level down."""

    kind: Literal["de_escalate"] = "de_escalate"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = SUPERVISOR
    reason: Text


class ReapplyPolicy(Command):
    """A supervisor applies the current SLA policy file to this case (its clocks keep their elapsed time)."""

    kind: Literal["reapply_policy"] = "reapply_policy"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = SUPERVISOR
    reason: Text


class CheckDeadlines(Command):
    """Sent by the case's own timer when an SLA warning or breach falls due."""

    kind: Literal["check_deadlines"] = "check_deadlines"
    STAGES: ClassVar[frozenset[Stage]] = OPEN_STAGES
    ROLES: ClassVar[frozenset[Role]] = ENGINE_ONLY


class AttemptCallback(Command):
    """Sent by the case's own timer when a callback falls due; `last_survey_at` is read just before."""

    kind: Literal["attempt_callback"] = "attempt_callback"
    STAGES: ClassVar[frozenset[Stage]] = frozenset({Stage.follow_up})
    ROLES: ClassVar[frozenset[Role]] = ENGINE_ONLY
    last_survey_at: Instant | None = None
    NOT_INTENT: ClassVar[frozenset[str]] = frozenset({"last_survey_at"})


class ExpireFollowUp(Command):
    """Sent by the case's own timer when the follow-up period runs out."""

    kind: Literal["expire_follow_up"] = "expire_follow_up"
    STAGES: ClassVar[frozenset[Stage]] = frozenset({Stage.follow_up})
    ROLES: ClassVar[frozenset[Role]] = ENGINE_ONLY


AnyCommand = Annotated[
    Union[
        OpenCase, RequestClarification, RecordCustomerReply, Respond, Retriage, Reassign,
        ProposeSolution, ReviseSolution, StartFollowUp, ConfirmSolution, RejectSolution,
        AddNote, CloseCase, EscalateCase, AcknowledgeEscalation, DeEscalate, ReapplyPolicy, CheckDeadlines,
        ExpireFollowUp, RecordRectification, AgreeReplyTime, BookAppointment, ConfirmAppointment,
        RecordServiceReport, AttemptCallback,
    ],
    Field(discriminator="kind"),
]
COMMAND_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(AnyCommand)
COMMAND_TYPES: dict[str, type[Command]] = {
    t.model_fields["kind"].default: t for t in AnyCommand.__origin__.__args__  # type: ignore[attr-defined]
}

# Sent only by a case's own timers, never by a sender: refused when they come from outside.
TIMER_COMMANDS = frozenset({"expire_follow_up", "check_deadlines", "attempt_callback"})


TIMER_ID_PREFIX = "timer:"


def timer_command_id(kind: str, version: int) -> str:
    """A timer's command id, derived from the case's own state (the version it fired at), so that a
    retried or replayed workflow task sends the same command, and the store sees a retry as a retry."""
    return f"{TIMER_ID_PREFIX}{kind}@{version}"
