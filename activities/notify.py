"""Notifications: what a notified event says to the outside, as a self-describing JSON body.

They are delivered from the event store by the outbox (activities/outbox.py), never from the
workflow, so a dead receiver cannot hold a command; activities/webhook.py signs and POSTs them. The
notification id is derived from the event's place in its case's stream (`<case_id>:<version>`): the
same on every attempt, by any deliverer, so a receiver can drop the duplicates that at-least-once
delivery brings. The body carries the case as it stood right after the event, so a receiver needs
nothing else to route it and show it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, Field

from domain.events import Event
from domain.model import CaseState

NOTIFIED = frozenset({"CaseEscalated", "SlaClockWarned", "SlaClockBreached", "CaseDeEscalated",
                      "CallbackAttempted", "RectificationRequired", "AppointmentBooked"})
SCHEMA = "casework.notification/2"
# The fields every event has, not its details. imported_at (when an import stored it) is the store's
# bookkeeping, not what happened: it stays out of the body, which is the same for an imported event.
_ENVELOPE = {"case_id", "command_id", "command_digest", "actor", "on_behalf_of", "at", "recorded_at", "type",
             "imported_at"}


class CaseSnapshot(BaseModel):
    """The case right after the event."""

    id: str
    url: str | None  # {public_base_url}/cases/{id}; null when no public base URL is configured
    subject: str
    priority: str
    category: str
    stage: str
    assignee: str | None
    team: str | None
    customer_id: str
    escalation_level: int


class Actor(BaseModel):
    id: str
    role: str


class WhatHappened(BaseModel):
    type: str  # CaseEscalated, SlaClockWarned, SlaClockBreached, ...
    summary: str  # one readable sentence
    occurred_at: AwareDatetime  # when it happened (ISO 8601, UTC)
    recorded_at: AwareDatetime  # when the engine decided it
    position: int  # the event's version in its case's stream
    actor: Actor
    on_behalf_of: str | None  # the customer, when staff or a gateway acted for them
    command_id: str
    details: dict[str, Any]  # the event's own fields, as JSON


class Notification(BaseModel):
    """The webhook body."""

    schema_: str = Field(SCHEMA, alias="schema")  # names this body's shape and version
    notification_id: str  # also the `webhook-id` and `Idempotency-Key` headers
    case: CaseSnapshot
    event: WhatHappened

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def idempotency_key(case_id: str, version: int) -> str:
    """The notification id. A case id may hold any character; percent-encoded, the id is plain
    ASCII and can travel in an HTTP header (a UUID or `T-1001` stays as it is)."""
    return f"{quote(case_id, safe='')}:{version}"


def case_link(public_base_url: str, case_id: str) -> str | None:
    return f"{public_base_url.rstrip('/')}/cases/{quote(case_id, safe='')}" if public_base_url else None


def _utc(at: datetime) -> datetime:
    # The engine records UTC; a time without a zone in an old stream was UTC too.
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


def notification_for(event: Event, version: int, case: CaseState, public_base_url: str = "") -> Notification:
    """The body for `event`, the `version`-th of its case; `case` is the case's state at that version."""
    details = event.model_dump(mode="json", exclude=_ENVELOPE)
    snapshot = case.model_dump(mode="json", include={"subject", "priority", "category", "stage", "assignee",
                                                     "team", "escalation_level"})
    return Notification(
        notification_id=idempotency_key(event.case_id, version),
        case=CaseSnapshot(id=event.case_id, url=case_link(public_base_url, event.case_id),
                          customer_id=case.customer.id, **snapshot),
        event=WhatHappened(
            type=event.type, summary=summary(event.type, details), occurred_at=_utc(event.at),
            recorded_at=_utc(event.recorded_at), position=version,
            actor=Actor(id=event.actor.id, role=event.actor.role.value), on_behalf_of=event.on_behalf_of,
            command_id=event.command_id,
            details=details))


def summary(kind: str, d: dict[str, Any]) -> str:
    """One sentence from the event's JSON fields (strings and numbers only, never a Python repr)."""
    say = {
        "CaseEscalated": lambda: (f"Escalated to level {d['level']} ({d['level_name']}), owner "
                                  f"{d.get('owner') or 'none'}, cause {d['cause']}"
                                  + (f" on SLA clock {d['clock']}" if d.get("clock") else "")
                                  + (f": {d['reason']}" if d.get("reason") else "")),
        "CaseDeEscalated": lambda: (f"De-escalated to level {d['level']} ({d['level_name']}), owner "
                                    f"{d.get('owner') or 'none'}: {d['reason']}"),
        "SlaClockWarned": lambda: f"SLA clock {d['clock']} at {round(d['share'] * 100)}% of its target, due {d['due']}",
        "SlaClockBreached": lambda: f"SLA clock {d['clock']} breached, it was due {d['due']}",
        "CallbackAttempted": lambda: (f"Callback attempt {d['attempt']} ({d['channel']}), next due {d['next_due']}"
                                      + (f", survey skipped: {d['survey_skipped']}" if d.get("survey_skipped") else "")),
        "RectificationRequired": lambda: f"Rectification required: {d['reason']}",
        "AppointmentBooked": lambda: (f"Appointment booked for {d['appointment']['at']} at "
                                      f"{d['appointment']['place']}: {d['appointment']['need']}"),
    }.get(kind)
    return say() if say else kind
