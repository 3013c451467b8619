"""Appending a command's events to the event store: the only writer of domain events."""

from __future__ import annotations

import structlog
from pydantic import BaseModel, Field
from temporalio import activity

from domain.events import AnyEvent
from domain.store import CaseStore

log = structlog.get_logger(__name__)


class AppendEvents(BaseModel):
    command_id: str
    events: list[AnyEvent] = Field(min_length=1)


class CaseStoreActivities:
    def __init__(self, store: CaseStore) -> None:
        self.store = store

    # A plain `def`: eventsourcing is synchronous, so the worker runs this on a thread pool.
    @activity.defn(name="append_events")
    def append_events(self, inp: AppendEvents) -> int:
        """Returns the number of events the case's stream holds afterwards."""
        # Idempotent: a retry after a stored-but-unacknowledged attempt finds the command id and stores nothing.
        version = self.store.append(inp.command_id, list(inp.events))
        log.info("events_appended", case_id=inp.events[0].case_id, command_id=inp.command_id,
                 stream_version=version, types=[e.type for e in inp.events],
                 attempt=activity.info().attempt)
        return version
