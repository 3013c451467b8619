"""Notifications: what a notified event says to the outside (a self-describing JSON body), and how
one is POSTed to the webhook.

They are delivered from the event store by the outbox (activities/outbox.py), never from the
workflow, so a dead receiver cannot hold a command. The idempotency key is derived from the event's
place in its case's stream (`<case_id>:<version>`): the same on every attempt, by any deliverer, so a
receiver can drop the duplicates that at-least-once delivery brings.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, Field

from domain.events import Event

NOTIFIED = frozenset({"CaseEscalated", "SlaClockWarned", "SlaClockBreached", "CaseDeEscalated",
                      "CallbackAttempted", "RectificationRequired", "AppointmentBooked"})
SCHEMA = "casework.notification/1"
_ENVELOPE = {"case_id", "command_id", "command_digest", "actor", "at", "recorded_at", "type"}


class Notification(BaseModel):
    """The webhook body. `details` is the event's own fields, as JSON."""

    schema_: str = Field(SCHEMA, alias="schema")  # names this body's shape and version
    idempotency_key: str
    case_id: str
    event_type: str  # CaseEscalated, SlaClockWarned, SlaClockBreached, ...
    at: datetime  # when it happened
    recorded_at: datetime
    position: int  # the event's version in its case's stream
    actor: dict[str, Any]
    command_id: str
    level: int | None = None
    owner: str | None = None
    clock: str | None = None
    summary: str  # one readable sentence
    details: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def idempotency_key(case_id: str, version: int) -> str:
    return f"{case_id}:{version}"


def notification_for(event: Event, version: int) -> Notification:
    details = event.model_dump(mode="json", exclude=_ENVELOPE)
    return Notification(
        idempotency_key=idempotency_key(event.case_id, version), case_id=event.case_id,
        event_type=event.type, at=event.at, recorded_at=event.recorded_at, position=version,
        actor=event.actor.model_dump(mode="json"), command_id=event.command_id,
        level=details.get("level"), owner=details.get("owner"), clock=details.get("clock"),
        summary=summary(event.type, event.case_id, details), details=details)


def summary(kind: str, case_id: str, d: dict[str, Any]) -> str:
    say = {
        "CaseEscalated": lambda: (f"escalated to level {d['level']} ({d['level_name']}), owner "
                                  f"{d.get('owner') or 'none'}, because of {d['cause']}"
                                  + (f" on clock {d['clock']}" if d.get("clock") else "")),
        "CaseDeEscalated": lambda: (f"de-escalated to level {d['level']} ({d['level_name']}), owner "
                                    f"{d.get('owner') or 'none'}: {d['reason']}"),
        "SlaClockWarned": lambda: f"SLA clock {d['clock']} at {round(d['share'] * 100)}% of its target, due {d['due']}",
        "SlaClockBreached": lambda: f"SLA clock {d['clock']} breached, it was due {d['due']}",
        "CallbackAttempted": lambda: (f"callback attempt {d['attempt']} ({d['channel']}), next due {d['next_due']}"
                                      + (f", survey skipped: {d['survey_skipped']}" if d.get("survey_skipped") else "")),
        "RectificationRequired": lambda: f"rectification required: {d['reason']}",
        "AppointmentBooked": lambda: (f"appointment booked for {d['appointment']['at']} at "
                                      f"{d['appointment']['place']}: {d['appointment']['need']}"),
    }.get(kind)
    return f"case {case_id}: {say() if say else kind}"


class DeliveryFailed(Exception):
    """The receiver did not acknowledge (no answer in time, refused connection, or a non-2xx status)."""


class WebhookSender:
    """POSTs a body with its `Idempotency-Key`; one connection pool, shared by the deliverer's threads."""

    def __init__(self, url: str, timeout_seconds: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout_seconds
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=httpx.Timeout(self.timeout), follow_redirects=False,
                                            headers={"User-Agent": "casework-notifier"})
            return self._client

    def send(self, key: str, body: dict[str, Any]) -> int:
        try:
            response = self._http().post(self.url, json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError as err:
            raise DeliveryFailed(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
        if not response.is_success:
            raise DeliveryFailed(f"answered {response.status_code}")
        return response.status_code

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

