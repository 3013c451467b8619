"""Notifications: a structured log line always, and a JSON webhook when one is configured.

The idempotency key travels in the body and the `Idempotency-Key` header, so a receiver can drop
the duplicates that retries (ours, or a lost acknowledgement) may bring.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime

import structlog
from pydantic import BaseModel
from temporalio import activity

log = structlog.get_logger("casework.notify")


class Notification(BaseModel):
    idempotency_key: str
    case_id: str
    kind: str  # the event type: CaseEscalated, SlaClockWarned, SlaClockBreached, ...
    at: datetime
    summary: str
    level: int | None = None
    owner: str | None = None
    clock: str | None = None
    details: dict = {}


class Notifier:
    def __init__(self, webhook_url: str = "", timeout_seconds: float = 10.0) -> None:
        self.webhook_url = webhook_url
        self.timeout = timeout_seconds

    @activity.defn(name="notify")
    def notify(self, note: Notification) -> str:
        log.warning("case_notification", **note.model_dump(mode="json"), attempt=activity.info().attempt)
        if not self.webhook_url:
            return "logged"
        request = urllib.request.Request(
            self.webhook_url, data=json.dumps(note.model_dump(mode="json")).encode(), method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": note.idempotency_key})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return f"delivered {response.status}"
        except urllib.error.HTTPError as err:
            # Raised, so Temporal retries it with backoff; the receiver sees the same key each time.
            raise RuntimeError(f"webhook {self.webhook_url} answered {err.code}") from None
