"""The case's store step: decide a command on the stream and append its events, atomically.

The only writer of domain events on the live path. The workflow adopts the `Outcome`, so the store
and the workflow cannot disagree (docs/exactly-once.md).
"""

from __future__ import annotations

from datetime import datetime

import structlog
from pydantic import BaseModel
from temporalio import activity

from domain.commands import AnyCommand
from domain.sla import SlaTerms
from domain.store import CaseStore, Outcome

log = structlog.get_logger(__name__)


class ExecuteCommand(BaseModel):
    case_id: str
    command: AnyCommand | None = None  # None: only read what the store holds after `after`
    now: datetime
    after: int  # the workflow's version: the outcome carries every stored event past it
    terms: SlaTerms | None = None


class CaseStoreActivities:
    def __init__(self, store: CaseStore) -> None:
        self.store = store

    # A plain `def`: eventsourcing is synchronous, so the worker runs this on a thread pool.
    @activity.defn(name="execute_command")
    def execute_command(self, inp: ExecuteCommand) -> Outcome:
        outcome = self.store.execute(inp.case_id, inp.command, inp.now, inp.after, inp.terms)
        log.info("case_store_step", case_id=inp.case_id,
                 command=inp.command.kind if inp.command else None,
                 command_id=inp.command.command_id if inp.command else None,
                 after=inp.after, version=outcome.version, types=[e.type for e in outcome.events],
                 refused=outcome.refusal.code if outcome.refusal else None, attempt=activity.info().attempt)
        return outcome
