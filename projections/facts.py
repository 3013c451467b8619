"""The stored case events as the reporting projection reads them: decoded straight from the stored
JSON into one small struct per event type holding only the fields the projection's handlers read
(msgspec: no pydantic model is built, and what no handler reads, the 6 KB policy pinned with
every case for one, is skipped over without being decoded).

The events were validated when they were decided; reading them back for the read models does not
validate them again. What is decoded keeps the domain's names and defaults (tests hold each struct
to its domain event), so the domain's own functions read these structs as they read its events
(`domain.clocks.clock_changes`). Personal fields stay sealed but for the two the reporting tables
keep: a new case's subject (sealed again for `case_subjects`) and an engine-written escalation reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Union

import msgspec
from msgspec import Raw, Struct
from pydantic import TypeAdapter

_DURATION = TypeAdapter(timedelta)


@lru_cache(maxsize=4096)
def duration(text: str) -> timedelta:
    """A duration as the domain wrote it (pydantic's ISO 8601, "PT8H", "P1Y2D": msgspec reads no years)."""
    return _DURATION.validate_python(text)


class Actor(Struct, gc=False):
    id: str
    role: str


class Fact(Struct, tag_field="type", kw_only=True, gc=False):
    case_id: str
    actor: Actor
    at: datetime
    recorded_at: datetime
    imported_at: datetime | None = None  # as-of's "known at" reads it (projections/asof.py)
    type = ""  # the tag, set below as a class attribute: `fact.type` reads as on a domain event


class SourceRef(Struct, gc=False):
    system: str
    external_id: str


class Customer(Struct, gc=False):
    id: str
    tier: str = "C"


class Terms(Struct, gc=False):
    policy_version: str
    calendar: Raw  # the pinned calendar's JSON, as stored: the key of the calendars decoded once


class Survey(Struct, gc=False):
    round: int
    scores: dict[str, float]
    overall: float
    scale: str
    original: dict[str, float]
    safety_incident: bool = False


class CaseOpened(Fact, tag="CaseOpened"):
    source: Union[SourceRef, None]
    customer: Customer
    channel: str
    category: str
    priority: str
    subject: str
    assignee: Union[str, None] = None
    team: Union[str, None] = None


class CaseReopened(Fact, tag="CaseReopened"):
    reopen_count: int
    stage: str


class ClarificationRequested(Fact, tag="ClarificationRequested"):
    pass


class CustomerReplied(Fact, tag="CustomerReplied"):
    resumed_stage: Union[str, None]


class ResponseSent(Fact, tag="ResponseSent"):
    first_response: bool


class CaseRetriaged(Fact, tag="CaseRetriaged"):
    priority: str
    category: str


class CaseReassigned(Fact, tag="CaseReassigned"):
    assignee: Union[str, None]
    team: Union[str, None]


class SolutionProposed(Fact, tag="SolutionProposed"):
    pass


class SolutionRevised(Fact, tag="SolutionRevised"):
    pass


class FollowUpStarted(Fact, tag="FollowUpStarted"):
    pass


class CallbackAttempted(Fact, tag="CallbackAttempted"):
    attempt: int
    channel: str
    survey_skipped: str = ""


class SurveyRecorded(Fact, tag="SurveyRecorded"):
    survey: Survey


class RectificationRequired(Fact, tag="RectificationRequired"):
    pass


class RectificationRecorded(Fact, tag="RectificationRecorded"):
    pass


class ReplyTimeAgreed(Fact, tag="ReplyTimeAgreed"):
    pass


class AppointmentBooked(Fact, tag="AppointmentBooked"):
    pass


class AppointmentConfirmed(Fact, tag="AppointmentConfirmed"):
    pass


class ServiceReportRecorded(Fact, tag="ServiceReportRecorded"):
    pass


class SolutionConfirmed(Fact, tag="SolutionConfirmed"):
    pass


class SolutionRejected(Fact, tag="SolutionRejected"):
    reopen_count: int


class NoteAdded(Fact, tag="NoteAdded"):
    pass


class CaseClosed(Fact, tag="CaseClosed"):
    reason: str


class SlaPolicyPinned(Fact, tag="SlaPolicyPinned"):
    terms: Terms


class SlaClockStarted(Fact, tag="SlaClockStarted"):
    clock: str
    target_text: str = msgspec.field(name="target")
    due: datetime
    cycle: int = 0

    @property
    def target(self) -> timedelta:
        return duration(self.target_text)


class SlaClockPaused(Fact, tag="SlaClockPaused"):
    clock: str


class SlaClockResumed(Fact, tag="SlaClockResumed"):
    clock: str
    due: datetime


class SlaClockWarned(Fact, tag="SlaClockWarned"):
    clock: str
    share: float


class SlaClockBreached(Fact, tag="SlaClockBreached"):
    clock: str


class SlaClockMet(Fact, tag="SlaClockMet"):
    clock: str


class SlaClockRetargeted(Fact, tag="SlaClockRetargeted"):
    clock: str
    target_text: str = msgspec.field(name="target")
    elapsed_text: str = msgspec.field(name="elapsed")
    due: Union[datetime, None]

    @property
    def target(self) -> timedelta:
        return duration(self.target_text)

    @property
    def elapsed(self) -> timedelta:
        return duration(self.elapsed_text)


class SlaClockCancelled(Fact, tag="SlaClockCancelled"):
    clock: str


class CaseEscalated(Fact, tag="CaseEscalated"):
    level: int
    level_name: str
    owner: Union[str, None]
    cause: str
    clock: Union[str, None] = None
    reason: str = ""


class EscalationAcknowledged(Fact, tag="EscalationAcknowledged"):
    level: int


class CaseDeEscalated(Fact, tag="CaseDeEscalated"):
    level: int
    level_name: str
    owner: Union[str, None]


FACT_TYPES: tuple[type[Fact], ...] = tuple(Fact.__subclasses__())
for _cls in FACT_TYPES:
    _cls.type = _cls.__struct_config__.tag  # type: ignore[misc, assignment]

AnyFact = Union[FACT_TYPES]  # type: ignore[valid-type]


class _Stored(Struct, gc=False):
    """The stored state (eventsourcing's JSON of CaseStream's event): its fact, nothing else."""

    fact: AnyFact  # type: ignore[valid-type]


_DECODER = msgspec.json.Decoder(_Stored)


def reader(mapper: Any) -> Any:
    """read(stored state bytes) -> its fact, for the store's mapper (domain.store.SealingMapper):
    decrypted and decompressed as configured, the personal fields the reporting tables keep opened."""
    decode, plain, open_field = _DECODER.decode, mapper.plain_state, mapper.open_field
    sealed = mapper.sealer is not None

    def read(state: bytes) -> Fact:
        fact = decode(plain(state)).fact
        if sealed:
            if fact.type == "CaseOpened":
                fact.subject = open_field(fact.case_id, fact.type, "subject", fact.subject)
            elif fact.type == "CaseEscalated" and fact.cause != "supervisor" and fact.reason:
                fact.reason = open_field(fact.case_id, fact.type, "reason", fact.reason)
        return fact

    return read
