"""The case's store step: decide a command on the stream and append its events, atomically.

The only writer of domain events on the live path. The workflow adopts the `Outcome`, so the store
and the workflow cannot disagree (docs/exactly-once.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import structlog
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.commands import TIMER_COMMANDS, AnyCommand, Command
from domain.lifecycle import CommandRefused, replay
from domain.model import ENGINE, CaseState
from domain.principals import Registry
from domain.sla import SlaTerms
from domain.store import CaseStore, Outcome

log = structlog.get_logger(__name__)


class ExecuteCommand(BaseModel):
    case_id: str
    command: AnyCommand | None = None  # None: only read what the store holds after `after`
    now: datetime
    after: int  # the workflow's version: the outcome carries every stored event past it
    terms: SlaTerms | None = None
    # "caller": sent by someone (an update, a start), checked against the registry; "engine": the
    # case's own timer, which only the workflow itself issues.
    origin: Literal["caller", "engine"] = "caller"


def only_local() -> None:
    """Refuse a call from anywhere but a case workflow on this worker.

    Any workflow in the namespace may schedule an activity by name on casework's task queue, with any
    input: the store step would then take `origin`, `now` and the command from a stranger. A local
    activity runs in the worker of the workflow that asked for it, so only casework's own workflows,
    on this worker, reach these.
    """
    if not activity.info().is_local:
        raise ApplicationError("this activity runs only as a local activity of casework's own workflows",
                               "not_local", type="Refused", non_retryable=True)


def no_engine_claims(_state: CaseState | None, cmd: Command) -> None:
    """The engine's own actor is for the case's timers: a caller presenting it would record its
    facts as the engine's."""
    if cmd.actor.id == ENGINE.id:
        raise CommandRefused("reserved_actor", f"the actor id '{ENGINE.id}' is the engine's own, for its "
                             "timers; a caller acts under an id of its own")


class BatchItem(BaseModel):
    command: AnyCommand
    origin: Literal["caller", "engine"] = "caller"


class ExecuteBatch(BaseModel):
    """Commands queued on one case, decided in their order in one store step. Each is decided on the
    state its predecessors left (`after` chains through them), exactly as one step per command would;
    only the round trips are shared (bursts of updates arrive in one workflow task)."""

    case_id: str
    items: list[BatchItem]
    now: datetime
    after: int


class ReadCase(BaseModel):
    case_id: str


# The store activities run to the end even when Temporal cancels them (a timeout, a run dropped from the
# worker's cache): the SDK would otherwise raise CancelledError inside the thread, possibly between the
# store's BEGIN and its rollback, and hand a connection with an open transaction back to the pool (every
# later step on it failed: "cannot start a transaction within a transaction"). A cancelled step's
# answer is dropped; the store answers its retry as a retry.
class CaseStoreActivities:
    def __init__(self, store: CaseStore, registry: Registry | None = None) -> None:
        self.store = store
        self.registry = registry  # None: open mode (the worker warned at start)

    def _authorize(self, inp: ExecuteCommand | ExecuteBatch, origin: str):
        case_id, registry = inp.case_id, self.registry
        if origin == "engine":
            def engine_only(_state: CaseState | None, cmd: Command) -> None:
                if cmd.actor != ENGINE or cmd.kind not in TIMER_COMMANDS:  # type: ignore[attr-defined]
                    raise CommandRefused("unauthenticated", "only the case's own timers act as the engine")
            return engine_only
        if registry is None:
            return no_engine_claims

        def by_registry(state: CaseState | None, cmd: Command) -> None:
            no_engine_claims(state, cmd)
            customer = state.customer.id if state else getattr(getattr(cmd, "customer", None), "id", None)
            registry.check(case_id, cmd, customer)
        return by_registry

    @activity.defn(name="read_case", no_thread_cancel_exception=True)
    def read_case(self, inp: ReadCase) -> CaseState | None:
        """The case as its stored events read now, past any cache (a forgotten customer's fields
        read "[forgotten]")."""
        only_local()
        if (refresh := getattr(self.store.sealer, "refresh", None)) is not None:
            refresh()  # asked right after a forgetting: its cached keys must not open the fields
        history = self.store.history(inp.case_id)
        return replay(history) if history else None

    # A plain `def`: eventsourcing is synchronous, so the worker runs this on a thread pool.
    @activity.defn(name="execute_command", no_thread_cancel_exception=True)
    def execute_command(self, inp: ExecuteCommand) -> Outcome:
        only_local()
        outcome = self.store.execute(inp.case_id, inp.command, inp.now, inp.after, inp.terms,
                                     authorize=self._authorize(inp, inp.origin))
        self._log(inp.case_id, inp.command, inp.origin, outcome)
        return outcome

    @activity.defn(name="execute_batch", no_thread_cancel_exception=True)
    def execute_batch(self, inp: ExecuteBatch) -> list[Outcome]:
        only_local()
        outcomes, after = [], inp.after
        for item in inp.items:
            outcome = self.store.execute(inp.case_id, item.command, inp.now, after,
                                         authorize=self._authorize(inp, item.origin))
            self._log(inp.case_id, item.command, item.origin, outcome)
            outcomes.append(outcome)
            after = outcome.version
        return outcomes

    def _log(self, case_id: str, cmd: Command | None, origin: str, outcome: Outcome) -> None:
        log.info("case_store_step", case_id=case_id,
                 command=cmd.kind if cmd else None,  # type: ignore[attr-defined]
                 command_id=cmd.command_id if cmd else None,
                 principal=(cmd.principal or None) if cmd else None,
                 auth="engine" if origin == "engine" else ("registry" if self.registry else "open"),
                 after=outcome.after, version=outcome.version, types=[e.type for e in outcome.events],
                 refused=outcome.refusal.code if outcome.refusal else None, attempt=activity.info().attempt)
