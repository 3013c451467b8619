"""The nouns of a service case: who, what, through which channel, and where it stands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from domain.personal import PERSONAL

# The instants a case can sensibly carry: history from 1990 on (imports of old help desks), nothing
# past 2100. Outside them a date is a typo or an attack on the calendar arithmetic.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _sane_instant(at: datetime) -> datetime:
    if not EARLIEST <= at < LATEST:
        raise ValueError(f"{at.isoformat()} is outside {EARLIEST.year}-{LATEST.year - 1}")
    return at.astimezone(UTC)


# Every instant a sender gives: with a zone (a naive time is refused, never guessed), stored in UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_sane_instant)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stage(str, Enum):
    intake = "intake"
    needs_clarification = "needs_clarification"
    response = "response"
    solution = "solution"
    follow_up = "follow_up"
    closed = "closed"


class Tier(str, Enum):
    A = "A"
    B = "B"
    C = "C"
    key_account = "key_account"


class Channel(str, Enum):
    phone = "phone"
    email = "email"
    chat = "chat"
    web = "web"
    sms = "sms"
    on_site = "on_site"
    social = "social"
    other = "other"


class Category(str, Enum):
    enquiry = "enquiry"
    fault = "fault"
    complaint = "complaint"
    suggestion = "suggestion"
    warranty = "warranty"
    problem = "problem"
    safety_incident = "safety_incident"
    return_visit = "return_visit"
    other = "other"


class Priority(str, Enum):
    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


class Role(str, Enum):
    agent = "agent"
    customer = "customer"
    supervisor = "supervisor"
    system = "system"


class ClosureReason(str, Enum):
    resolved = "resolved"
    # The follow-up period ran out without an answer from the customer.
    resolved_unconfirmed = "resolved_unconfirmed"
    duplicate = "duplicate"
    invalid = "invalid"
    cancelled = "cancelled"
    no_response = "no_response"


class Actor(Frozen):
    id: str = Field(min_length=1, max_length=200)
    role: Role


# The engine itself, as the actor of what its timers decide (breaches, callbacks, expiries).
ENGINE = Actor(id="casework", role=Role.system)


class SourceRef(Frozen):
    """Where a case came from: the same (system, external_id) is always the same case."""

    system: str = Field(min_length=1, max_length=100)
    external_id: str = Field(min_length=1, max_length=200)


class Customer(Frozen):
    id: str = Field(min_length=1, max_length=200)  # a pseudonymous key: never a name or an address
    name: Annotated[str, PERSONAL] = Field(min_length=1, max_length=300)
    contact: Annotated[str | None, PERSONAL] = Field(default=None, max_length=300)
    tier: Tier = Tier.C
    dedicated_owner: str | None = Field(default=None, max_length=200)


class Clock(BaseModel):
    """One SLA clock of a case. Elapsed business time = elapsed_before + business time since running_since."""

    name: str
    cycle: int = 0  # next_response restarts after each customer message: each run is its own cycle
    target: timedelta
    state: Literal["running", "paused", "met", "cancelled"] = "running"
    started_at: datetime
    running_since: datetime | None = None
    elapsed_before: timedelta = timedelta(0)  # business time counted before running_since
    paused_since: datetime | None = None
    paused_total: timedelta = timedelta(0)  # calendar time spent paused
    due: datetime | None = None
    warned: list[float] = Field(default_factory=list)
    breached_at: datetime | None = None
    met_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state in ("running", "paused")


class Survey(BaseModel):
    """A satisfaction survey on the 0-100 scale, with what the customer actually gave."""

    round: int  # the solution it rates: 0 for the first, +1 after each reopen
    scores: dict[str, float]
    overall: float
    scale: str
    original: dict[str, float]
    safety_incident: bool = False
    comment: Annotated[str, PERSONAL] = ""  # the customer's own words: sealed and forgotten like any free text


class Appointment(BaseModel):
    at: datetime
    place: Annotated[str, PERSONAL]  # an address, a door code
    need: Annotated[str, PERSONAL]
    confirmed: bool = False


class CaseState(BaseModel):
    """Everything the rules need to decide the next step; rebuilt from events by `evolve`."""

    case_id: str
    source: SourceRef | None = None
    customer: Customer
    channel: Channel
    category: Category
    priority: Priority
    subject: Annotated[str, PERSONAL]
    description: Annotated[str, PERSONAL] = ""
    stage: Stage = Stage.intake
    # The stage a clarification round interrupted, so the customer's reply returns there.
    return_stage: Stage | None = None
    assignee: str | None = None
    team: str | None = None
    opened_at: datetime
    first_response_at: datetime | None = None
    solved_at: datetime | None = None
    closed_at: datetime | None = None
    closure_reason: ClosureReason | None = None
    solution: Annotated[str | None, PERSONAL] = None
    solution_revisions: int = 0
    follow_up_due: datetime | None = None
    customer_confirmed: bool = False
    reopen_count: int = 0
    follow_up_of: str | None = None  # the closed case this one follows up (a reply after its reopen window)
    clarification_rounds: int = 0
    notes_count: int = 0
    version: int = 0  # events applied so far
    last_fact_at: datetime | None = None  # the latest `at` recorded: live commands may not predate it
    sla: "SlaTerms | None" = None  # pinned when the case opens
    clocks: dict[str, Clock] = Field(default_factory=dict)
    breaches: list[str] = Field(default_factory=list)  # "clock#cycle" of every breach: breaches are permanent
    escalation_level: int = 0
    escalation_level_name: str = ""
    escalation_acknowledged: bool = False
    callback_attempts: int = 0
    callback_due: datetime | None = None
    survey_requested_round: int | None = None
    surveys: list[Survey] = Field(default_factory=list)
    rectification_pending: bool = False
    rectification_notes: int = 0
    appointment: Appointment | None = None
    service_reports: int = 0

    @property
    def sla_breached(self) -> list[str]:
        """Every clock that ever breached (a later cycle of the clock does not wipe the breach)."""
        return sorted({b.split("#")[0] for b in self.breaches}
                      | {name for name, c in self.clocks.items() if c.breached_at is not None})

    @property
    def is_closed(self) -> bool:
        return self.stage is Stage.closed


# SlaTerms refers to this module's enums, so it is imported last and the forward reference resolved.
from domain.sla import SlaTerms  # noqa: E402

CaseState.model_rebuild()
