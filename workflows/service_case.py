"""ServiceCase: one durable workflow per case. It decides with domain rules, stores through an activity."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.case_store import AppendEvents, CaseStoreActivities
    from activities.follow_up import FollowUpActivities, LastSurvey
    from activities.notify import Notification, Notifier
    from activities.sla_policy import SlaPolicyActivities, TermsFor
    from domain.clocks import ClockView, clock_views
    from domain.commands import COMMAND_ADAPTER, COMMAND_TYPES, TIMER_COMMANDS, Command, OpenCase, ReapplyPolicy
    from domain.events import Event
    from domain.ids import case_id_of
    from domain.lifecycle import CommandRefused, check_allowed, decide, evolve
    from domain.model import ENGINE, CaseState
    from domain.sla import SlaTerms
    from domain.timers import next_timer
    from workflows.contract import (
        CASE_ESCALATION_LEVEL, CASE_PRIORITY, CASE_SLA_BREACHED, CASE_STAGE, CASE_TIER, CLOCKS_QUERY, OPEN_UPDATE,
        RECENT_COMMAND_IDS, STATE_QUERY, TIMELINE_KEPT, TIMELINE_QUERY, WORKFLOW_TYPE, CaseInput,
        TimelineEntry,
    )

# `open` has its own update; the follow-up expiry is the case's own timer, not for senders.
INTERNAL_COMMANDS = TIMER_COMMANDS | {"open"}
NOTIFIED = frozenset({"CaseEscalated", "SlaClockWarned", "SlaClockBreached", "CaseDeEscalated",
                      "CallbackAttempted", "RectificationRequired", "AppointmentBooked"})
# A notification that cannot be delivered is logged and given up: it must never hold a case back.
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_attempts=8)
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
            await self._execute(opening, await self._load_terms(opening))
        while not self._state.is_closed:
            if self._should_continue_as_new():
                # Let accepted commands finish, then carry everything to a fresh run.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(CaseInput(
                    state=self.state, timeline=self.timeline[-TIMELINE_KEPT:],
                    recent_command_ids=self.recent, limits=inp.limits))
            await self._wait_for_change_or_deadline()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _wait_for_change_or_deadline(self) -> None:
        """Sleep until the state changes or the case's next timer falls due, then send its command."""
        version = self._state.version
        changed = lambda: self._state.version != version or self._should_continue_as_new()  # noqa: E731
        timer = next_timer(self._state)
        if timer is None:
            await workflow.wait_condition(changed)
            return
        wake, kind = timer
        remaining = wake - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(changed, timeout=remaining, timeout_summary=kind)
                return
            except asyncio.TimeoutError:
                pass
        extra = {}
        if kind == "attempt_callback":  # the survey throttle needs the customer's last survey
            extra["last_survey_at"] = await workflow.execute_activity_method(
                FollowUpActivities.last_survey_at, LastSurvey(customer_id=self._state.customer.id),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)
        due = COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": str(workflow.uuid4()),
                                               "actor": ENGINE, **extra})
        try:
            await self._execute(due)
        except ApplicationError:
            pass  # a command in the same instant moved the case on: its outcome stands

    @workflow.update(name=OPEN_UPDATE)
    async def open(self, cmd: OpenCase) -> CaseState:
        """Opening an open case returns it unchanged: intake is idempotent."""
        await workflow.wait_condition(lambda: self.state is not None)
        return self._state

    @workflow.update(dynamic=True)
    async def command(self, name: str, args: Sequence[RawValue]) -> CaseState:
        cmd = self._parse(name, args)
        await workflow.wait_condition(lambda: self.state is not None)  # sent right after the start
        terms = await self._load_terms(self._state) if isinstance(cmd, ReapplyPolicy) else None
        return await self._execute(cmd, terms)

    async def _load_terms(self, case: OpenCase | CaseState) -> SlaTerms:
        return await workflow.execute_activity_method(
            SlaPolicyActivities.load_sla_terms,
            TermsFor(priority=case.priority, tier=case.customer.tier, category=case.category, channel=case.channel),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)

    @command.validator
    def _validate(self, name: str, args: Sequence[RawValue]) -> None:
        # Runs before the update is written to history: a refusal here leaves no trace anywhere.
        cmd = self._parse(name, args)
        if cmd.command_id in self.recent_set:
            return
        if self.state is None:
            return  # still opening (its policy is being read): decided once the case is open
        if self._should_continue_as_new():
            # The run is handing over to a fresh one (Temporal caps updates per run); nothing was
            # stored, and the same command sent again lands on the new run.
            raise ApplicationError(f"command '{name}' not taken: case {self.state.case_id} is "
                                   "continuing as new; send it again", "continuing_as_new",
                                   type="CommandRefused")
        try:
            if isinstance(cmd, ReapplyPolicy):
                check_allowed(self.state, cmd)  # the terms are read after acceptance
            else:
                decide(self.state, cmd, workflow.now())
        except CommandRefused as err:
            raise refusal(err) from None

    @workflow.query(name=STATE_QUERY)
    def get_state(self) -> CaseState | None:
        return self.state

    @workflow.query(name=CLOCKS_QUERY)
    def get_clocks(self, at: datetime | None = None) -> list[ClockView]:
        # A query sees the time of the case's last activity; the caller says when "now" is.
        return clock_views(self.state, at or workflow.now()) if self.state else []

    @workflow.query(name=TIMELINE_QUERY)
    def get_timeline(self) -> list[TimelineEntry]:
        return self.timeline

    async def _execute(self, cmd: Command, terms: SlaTerms | None = None) -> CaseState:
        # Counted on entry, before the lock, so validators see commands still waiting their turn.
        self.commands_this_run += 1
        async with self.lock:
            if cmd.command_id in self.recent_set:
                return self._state  # a retried command: applied once already
            try:
                # Decided again under the lock: another command may have moved the case since validation.
                events = decide(self.state, cmd, workflow.now(), terms)
            except CommandRefused as err:
                raise refusal(err) from None
            if not events:
                return self._state
            # A local activity: the append runs in this worker without a trip through the server's
            # task queue (measured in bench/README.md); a retry stays idempotent by command id.
            stored = await workflow.execute_local_activity_method(
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
            self._publish_search_attributes()
            await self._notify([ev for ev in events if ev.type in NOTIFIED])
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

    async def _notify(self, events: list[Event]) -> None:
        for i, ev in enumerate(events):
            data = ev.model_dump(mode="json", exclude={"case_id", "command_id", "actor", "at", "recorded_at", "type"})
            note = Notification(
                idempotency_key=f"{ev.case_id}:{ev.command_id}:{ev.type}:{i}", case_id=ev.case_id, kind=ev.type,
                at=ev.at, level=data.get("level"), owner=data.get("owner"), clock=data.get("clock"),
                summary=f"case {ev.case_id}: {ev.type} {data}", details=data)
            try:
                await workflow.execute_activity_method(
                    Notifier.notify, note, start_to_close_timeout=timedelta(seconds=15), retry_policy=NOTIFY_RETRY)
            except ActivityError as err:
                workflow.logger.error("notification not delivered", extra={"key": note.idempotency_key,
                                                                            "error": str(err.cause)})

    def _publish_search_attributes(self) -> None:
        state = self._state
        workflow.upsert_search_attributes([
            CASE_STAGE.value_set(state.stage.value), CASE_PRIORITY.value_set(state.priority.value),
            CASE_TIER.value_set(state.customer.tier.value),
            CASE_ESCALATION_LEVEL.value_set(state.escalation_level),
            CASE_SLA_BREACHED.value_set(bool(state.sla_breached))])

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
