"""ServiceCase: one durable workflow per case. It decides with domain rules, stores through an activity."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.case_store import AppendEvents, CaseStoreActivities
    from domain.commands import COMMAND_TYPES, Command, ExpireFollowUp, OpenCase
    from domain.ids import case_id_of
    from domain.lifecycle import CommandRefused, decide, evolve
    from domain.model import Actor, CaseState, Role, Stage
    from workflows.contract import (
        OPEN_UPDATE, RECENT_COMMAND_IDS, STATE_QUERY, TIMELINE_KEPT, TIMELINE_QUERY, WORKFLOW_TYPE,
        CaseInput, TimelineEntry,
    )

# `open` has its own update; the follow-up expiry is the case's own timer, not for senders.
INTERNAL_COMMANDS = frozenset({"open", "expire_follow_up"})
ENGINE = Actor(id="casework", role=Role.system)
# Storage outages are waited out, never turned into lost commands: retry without a cap on attempts.
STORE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))


def refusal(err: CommandRefused) -> ApplicationError:
    return ApplicationError(err.message, err.code, type="CommandRefused", non_retryable=True)


@workflow.defn(name=WORKFLOW_TYPE)
class ServiceCaseWorkflow:
    @workflow.init
    def __init__(self, inp: CaseInput) -> None:
        self.inp = inp
        self.state: CaseState | None = inp.state
        self.timeline = list(inp.timeline)
        self.recent = list(inp.recent_command_ids)
        self.recent_set = set(self.recent)
        # Update handlers run concurrently; one command at a time keeps decide/append/evolve atomic.
        self.lock = asyncio.Lock()
        self.commands_this_run = 0

    @workflow.run
    async def run(self, inp: CaseInput) -> CaseState:
        if self.state is None:
            if inp.open is None:
                raise ApplicationError("ServiceCase needs an 'open' command as input", non_retryable=True)
            opening = inp.open
            if not opening.case_id:  # started by hand (e.g. the temporal CLI): the id names the case
                opening = opening.model_copy(update={"case_id": case_id_of(workflow.info().workflow_id)})
            await self._execute(opening)
        while not self._state.is_closed:
            if self._should_continue_as_new():
                # Let accepted commands finish, then carry everything to a fresh run.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(CaseInput(
                    state=self.state, timeline=self.timeline[-TIMELINE_KEPT:],
                    recent_command_ids=self.recent, limits=inp.limits))
            await self._wait_for_change_or_follow_up_end()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _wait_for_change_or_follow_up_end(self) -> None:
        version = self._state.version
        changed = lambda: self._state.version != version or self._should_continue_as_new()  # noqa: E731
        due = self._state.follow_up_due if self._state.stage is Stage.follow_up else None
        if due is None:
            await workflow.wait_condition(changed)
            return
        remaining = due - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(changed, timeout=remaining, timeout_summary="follow-up period")
                return
            except asyncio.TimeoutError:
                pass
        try:
            await self._execute(ExpireFollowUp(command_id=str(workflow.uuid4()), actor=ENGINE))
        except ApplicationError:
            pass  # the customer answered in the same instant: their answer stands

    @workflow.update(name=OPEN_UPDATE)
    async def open(self, cmd: OpenCase) -> CaseState:
        """Opening an open case returns it unchanged: intake is idempotent."""
        await workflow.wait_condition(lambda: self.state is not None)
        return self._state

    @workflow.update(dynamic=True)
    async def command(self, name: str, args: Sequence[RawValue]) -> CaseState:
        return await self._execute(self._parse(name, args))

    @command.validator
    def _validate(self, name: str, args: Sequence[RawValue]) -> None:
        # Runs before the update is written to history: a refusal here leaves no trace anywhere.
        cmd = self._parse(name, args)
        if cmd.command_id in self.recent_set:
            return
        if self.state is None:
            raise ApplicationError(f"command '{name}' refused: the case is still opening; retry",
                                   "not_open", type="CommandRefused")
        if self._should_continue_as_new():
            # The run is handing over to a fresh one (Temporal caps updates per run); nothing was
            # stored, and the same command sent again lands on the new run.
            raise ApplicationError(f"command '{name}' not taken: case {self.state.case_id} is "
                                   "continuing as new; send it again", "continuing_as_new",
                                   type="CommandRefused")
        try:
            decide(self.state, cmd, workflow.now())
        except CommandRefused as err:
            raise refusal(err) from None

    @workflow.query(name=STATE_QUERY)
    def get_state(self) -> CaseState | None:
        return self.state

    @workflow.query(name=TIMELINE_QUERY)
    def get_timeline(self) -> list[TimelineEntry]:
        return self.timeline

    async def _execute(self, cmd: Command) -> CaseState:
        # Counted on entry, before the lock, so validators see commands still waiting their turn.
        self.commands_this_run += 1
        async with self.lock:
            if cmd.command_id in self.recent_set:
                return self._state  # a retried command: applied once already
            try:
                # Decided again under the lock: another command may have moved the case since validation.
                events = decide(self.state, cmd, workflow.now())
            except CommandRefused as err:
                raise refusal(err) from None
            stored = await workflow.execute_activity_method(
                CaseStoreActivities.append_events, AppendEvents(command_id=cmd.command_id, events=events),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)
            version = self.state.version if self.state else 0
            if stored == version:
                # Older than the remembered window, but the store knew it: applied once, long ago.
                self._remember(cmd.command_id)
                return self._state
            if stored != version + len(events):
                raise ApplicationError(
                    f"event store holds {stored} events for the case, the workflow expected "
                    f"{version + len(events)}", "store_diverged", type="StoreDiverged")
            for event in events:
                self.state = evolve(self.state, event)
                self.timeline.append(TimelineEntry(
                    type=event.type, at=event.at, actor_id=event.actor.id, role=event.actor.role.value,
                    stage=self.state.stage.value, command_id=event.command_id))
            del self.timeline[:-TIMELINE_KEPT]
            self._remember(cmd.command_id)
            workflow.logger.info("command applied", extra={
                "case_id": self.state.case_id, "command": cmd.kind, "stage": self.state.stage.value})
            return self.state

    def _parse(self, name: str, args: Sequence[RawValue]) -> Command:
        model = COMMAND_TYPES.get(name)
        if model is None or name in INTERNAL_COMMANDS:
            known = ", ".join(k for k in COMMAND_TYPES if k not in INTERNAL_COMMANDS)
            raise ApplicationError(f"unknown command '{name}' (commands: {known})",
                                   "unknown_command", type="CommandRefused")
        if len(args) != 1:
            raise ApplicationError(f"command '{name}' takes exactly one JSON object, got {len(args)}",
                                   "malformed", type="CommandRefused")
        try:
            return workflow.payload_converter().from_payload(args[0].payload, model)
        except (ValidationError, ValueError, TypeError) as err:
            raise ApplicationError(f"command '{name}' has a malformed payload: {err}",
                                   "malformed", type="CommandRefused") from None

    def _remember(self, command_id: str) -> None:
        self.recent.append(command_id)
        self.recent_set.add(command_id)
        if len(self.recent) > RECENT_COMMAND_IDS:
            self.recent_set.discard(self.recent.pop(0))

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (self.commands_this_run >= self.inp.limits.max_commands_per_run
                or info.get_current_history_length() >= self.inp.limits.max_history_events
                or info.is_continue_as_new_suggested())

    @property
    def _state(self) -> CaseState:
        assert self.state is not None
        return self.state
