"""ServiceCase: one durable workflow per case. It decides with domain rules, stores through an activity."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.case_store import BatchItem, CaseStoreActivities, ExecuteBatch, ExecuteCommand, ReadCase
    from activities.follow_up import FollowUpActivities, LastSurvey
    from activities.sla_policy import SlaPolicyActivities, TermsFor
    from domain.clocks import ClockView, clock_views
    from domain.commands import (
        COMMAND_ADAPTER, COMMAND_TYPES, TIMER_COMMANDS, Command, OpenCase, ReapplyPolicy, Retriage,
        timer_command_id,
    )
    from domain.ids import WORKFLOW_ID_PREFIX, case_id_of
    from domain.lifecycle import CommandRefused, check_allowed, check_time, decide, evolve
    from domain.model import ENGINE, CaseState, Role
    from domain.refusal import in_words
    from domain.sla import SlaTerms
    from domain.store import Outcome
    from domain.timers import next_timer
    from workflows.contract import (
        CASE_ASSIGNEE, CASE_CATEGORY, CASE_ESCALATION_LEVEL, CASE_NEXT_DUE, CASE_PRIORITY, CASE_SLA_BREACHED,
        CASE_STAGE, CASE_TEAM, CASE_TIER, CLOCKS_QUERY,
        FORGET_UPDATE, KNOWN_COMMAND_IDS, OPEN_UPDATE, STATE_QUERY, TIMELINE_KEPT, TIMELINE_QUERY, WORKFLOW_TYPE,
        CaseInput, ForgetPersonalData, TimelineEntry, case_summary,
    )

# Temporal caps a run at 2,000 updates and 51,200 history events; the soft limits in Limits hand
# over well before, these stop taking commands just before the caps.
HARD_COMMANDS = 1950
HARD_EVENTS = 48_000
# `open` has its own update; the follow-up expiry is the case's own timer, not for senders.
INTERNAL_COMMANDS = TIMER_COMMANDS | {"open"}
# Storage outages are waited out, never turned into lost commands: retry without a cap on attempts.
# Reading a command's SLA terms again after the store found them stale (see _execute).
TERMS_ATTEMPTS = 3
# Commands queued on a case go to the store together, this many at most per store step: a burst of
# updates then costs a few local activities instead of one each, and a workflow task stays well
# inside its timeout (a task over it is retried with all its work: bursts stalled the fault run).
BATCH_MAX = 32
# ... and at most this many bytes of commands: the batch's answer carries their events, and a local
# activity's result must stay well under Temporal's 2 MB payload limit (a larger command goes alone).
BATCH_BYTES = 256 * 1024
STORE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))
# Runs started from this patch on write fewer events per command (bench/README.md, "Commands"): policy
# terms and the last survey read by local activities (a marker instead of an activity's three events and
# the workflow task that takes its result), and one alarm per wake-up that a later deadline leaves
# running instead of a timer cancelled and started again on each stage change. Runs started before it
# keep their commands (tests/workflows/histories replay them); one id, asked once per run.
LEAN_PATCH = "lean-history-2026-11"


def refusal(code: str, message: str) -> ApplicationError:
    return ApplicationError(message, code, type="CommandRefused", non_retryable=True)


def reused(command_id: str, case_id: str) -> ApplicationError:
    return refusal("command_id_reused", f"command id '{command_id}' was used before for another command on "
                   f"case {case_id}; a retry must repeat the same command, a new command needs a new id")


def answer(state: CaseState) -> CaseState:
    """The case as a command's answer: without the pinned policy's full text (11 of its 12 KB, in every
    answer and in history each time; the `state` query has it, `sla.policy_version` names it)."""
    if state.sla is None or state.sla.policy is None:
        return state
    return state.model_copy(update={"sla": state.sla.model_copy(update={"policy": None})})


class _Alarm:
    """The main loop's running timer and the instant it rings (the deadline it was started for)."""

    __slots__ = ("at", "task")

    def __init__(self, at: datetime, task: asyncio.Future) -> None:
        self.at, self.task = at, task


class _Queued:
    """A command waiting for its store step, and, once decided, its answer."""

    __slots__ = ("cmd", "origin", "state", "error")

    def __init__(self, cmd: Command, origin: str) -> None:
        self.cmd, self.origin = cmd, origin
        self.state: CaseState | None = None
        self.error: ApplicationError | None = None

    @property
    def done(self) -> bool:
        return self.state is not None or self.error is not None


# Not sandboxed: the sandbox's per-activation import and serialization-context proxies were ~40 % of
# the worker's CPU per command (bench/README.md, "Commands"). What it guards against — clocks, I/O and
# randomness in workflow code — this workflow gets by construction: it only calls domain/ (pure rules,
# no I/O: tests/domain/test_layering.py), workflow.now() and activities; tests replay its histories.
@workflow.defn(name=WORKFLOW_TYPE, sandboxed=False)
class ServiceCaseWorkflow:
    """Drives one case: takes commands as updates, sleeps to its deadlines, and keeps a copy of the
    case as the event store holds it. The store decides and appends (activities.case_store); this
    workflow adopts what the store returns, so a lost, retried, re-ordered or reset workflow task
    can never make the two disagree (docs/exactly-once.md)."""

    @workflow.init
    def __init__(self, raw: RawValue = None) -> None:  # type: ignore[assignment]
        # The input is parsed here, not by the SDK, so a malformed start fails the workflow at once
        # (in `run`) instead of failing its first task forever while holding the case's id.
        self.malformed: str | None = None
        try:
            inp = workflow.payload_converter().from_payload(raw.payload, CaseInput) if raw else None
            if inp is None:
                raise ValueError("no input: the workflow takes one CaseInput object")
        except Exception as err:  # noqa: BLE001 - any decoding error is the sender's
            inp, self.malformed = CaseInput(), str(err).splitlines()[0][:500]
        self.inp = inp
        self.state: CaseState | None = inp.state
        self.timeline = list(inp.timeline)
        self.known: dict[str, str] = dict(inp.known_commands)  # command id -> digest
        self.forgot = inp.forgot_commands
        # Update handlers run concurrently; one store step at a time keeps `after` exact.
        self.lock = asyncio.Lock()
        self.queue: list[_Queued] = []  # commands waiting for the lock, in arrival order
        self.commands_this_run = 0
        self.spent_timer: tuple[str, int] | None = None
        self._timer_memo: tuple[int, tuple[datetime, str] | None] | None = None
        self._published: list | None = None  # the search attributes last upserted
        self.open_refused: ApplicationError | None = None
        # The case as the store holds it is known: opened by this run, or a continued run's input
        # checked against the store. Until then handlers wait (the input may be anyone's).
        self.verified = False
        # A reset gives the run a new random seed (also when its history is replayed), and may have
        # cut off events the store holds: the case then reads them back before anything else.
        self.resync = False
        self.forgetting = False  # the customer was forgotten: hand over to a run without their data
        # The command the validator parsed, with the payload it came from: the SDK runs an update's
        # handler right after its validator, on the same payload, so the handler takes it from here
        # instead of validating the JSON a second time (bench/README.md, "Commands").
        self._parsed: tuple[object, Command] | None = None
        self.lean = False  # set by `run` from LEAN_PATCH: this run writes the leaner history
        self.alarm: _Alarm | None = None  # lean runs: the timer the main loop keeps across commands
        workflow.register_random_seed_callback(self._on_reset)

    def _on_reset(self, _seed: int) -> None:
        self.resync = True

    @workflow.run
    async def run(self, raw: RawValue = None) -> CaseState:  # type: ignore[assignment]
        # Asked first, in the run's first task, before any command: a run replayed from a history
        # without the patch's marker takes the old commands throughout (the answer is memoized).
        self.lean = workflow.patched(LEAN_PATCH)
        if self.malformed is not None:
            raise ApplicationError(f"ServiceCase input is malformed: {self.malformed}", "malformed",
                                   type="CommandRefused", non_retryable=True)
        if self.state is not None and self.state.case_id != self._own_case_id():
            raise ApplicationError(f"a continued run of case {self.state.case_id} cannot run as workflow "
                                   f"'{workflow.info().workflow_id}'", "case_id_mismatch",
                                   type="CommandRefused", non_retryable=True)
        try:
            if self.state is not None:
                await self._continue_from_the_store()
            else:
                await self._open(self.inp.open)
        except ApplicationError as err:
            # Refused: the `open` update answers with the refusal; the run then fails, and a failed
            # run does not keep the case id from a corrected opening.
            self.open_refused = err
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise
        self.verified = True
        while True:
            if self._state.is_closed:
                # A closed case's run ends once its commands are answered. A run started for a closed
                # case (the client reopening it: casework/client.py) thereby takes the commands sent
                # with its start: one that reopens the case keeps the run going.
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._state.is_closed:
                    break
            if self.resync:
                await self._sync()
                continue
            if self._should_continue_as_new():
                # Let accepted commands finish, then carry everything to a fresh run.
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(CaseInput(
                    state=self.state, timeline=self.timeline[-TIMELINE_KEPT:], known_commands=self.known,
                    forgot_commands=self.forgot, limits=self.inp.limits))
            if self.lean:
                await self._wait_with_alarm()
            else:
                await self._wait_for_change_or_deadline()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _continue_from_the_store(self) -> None:
        """A continued run starts from the case as the store holds it, not from its input: anyone who
        may start workflows could write that input (a forged state for a case id, a case the store
        has never seen). The input's copy only saves the read when they agree."""
        stored = await workflow.execute_local_activity_method(
            CaseStoreActivities.read_case, ReadCase(case_id=self.state.case_id),
            start_to_close_timeout=timedelta(seconds=60), retry_policy=STORE_RETRY)
        if stored is None:
            raise ApplicationError(f"a continued run of case {self.state.case_id}, which the store does not "
                                   "hold: refused", "not_open", type="CommandRefused", non_retryable=True)
        if stored != self.state:
            workflow.logger.warning("continued run differs from the store; the store's case is taken",
                                    extra={"case_id": stored.case_id, "input_version": self.state.version,
                                           "stored_version": stored.version})
            self.state = stored

    async def _open(self, opening: OpenCase | None) -> None:
        if opening is None:
            raise ApplicationError("ServiceCase needs an 'open' command as input", "malformed",
                                   type="CommandRefused", non_retryable=True)
        # The workflow id names the case: a workflow may only ever write its own case's stream.
        case_id = self._own_case_id()
        if opening.case_id and opening.case_id != case_id:
            raise ApplicationError(
                f"open.case_id '{opening.case_id}' does not match the workflow id "
                f"'{workflow.info().workflow_id}' (case {case_id})", "case_id_mismatch",
                type="CommandRefused", non_retryable=True)
        try:  # validated again: the id comes from the workflow id, which any starter chooses
            opening = OpenCase.model_validate({**opening.model_dump(), "case_id": case_id})
        except ValidationError as err:
            raise ApplicationError(f"case id from workflow id is not valid: {str(err).splitlines()[-1]}",
                                   "malformed", type="CommandRefused", non_retryable=True) from None
        await self._execute(opening, await self._load_terms(opening))  # a refusal ends the workflow

    def _next_timer(self) -> tuple[datetime, str] | None:
        """next_timer of the case, computed once per version (wait conditions ask after every step)."""
        version = self._version
        if self._timer_memo is None or self._timer_memo[0] != version:
            self._timer_memo = (version, next_timer(self._state))
        return self._timer_memo[1]

    async def _wait_unless_timed(self) -> tuple[int, datetime, str, Callable[[], bool]] | None:
        """What both waits below do first, before any timer: with no timer, or with one already sent
        at this version, wait here for a change (None). Else the version, the timer's instant and
        kind, and the test of a change that makes the loop look again. It starts no timer, so it
        writes nothing to history: both waits replay as they did before it was shared."""
        version = self._state.version
        timer = self._next_timer()
        if timer is not None and self.spent_timer == (timer[1], version):
            # Sent at this version already and it changed nothing: wait for any change.
            await workflow.wait_condition(lambda: (self._state.version != version or self.resync
                                                   or self._should_continue_as_new()))
            return None
        changed = lambda: (self._next_timer() != timer or self._state.is_closed or self.resync  # noqa: E731
                           or self._should_continue_as_new())
        if timer is None:
            await workflow.wait_condition(changed)
            return None
        return version, timer[0], timer[1], changed

    async def _wait_for_change_or_deadline(self) -> None:
        """Sleep until the case's next timer changes or falls due, then send its command.

        A command that leaves the next deadline where it was (a note, most replies) does not wake
        this loop: the running timer stays, instead of a cancel and a new timer in history each time."""
        timed = await self._wait_unless_timed()
        if timed is None:
            return
        version, wake, kind, changed = timed
        remaining = wake - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(changed, timeout=remaining, timeout_summary=kind)
                return
            except asyncio.TimeoutError:
                pass
        await self._send_due(kind, version)

    async def _wait_with_alarm(self) -> None:
        """As _wait_for_change_or_deadline, with one alarm per wake-up (runs with LEAN_PATCH).

        A stage change often moves the next deadline later, or away (waiting on the customer): the
        running alarm then stays, and when it rings before anything is due the loop starts one for the
        deadline as it is then. Only a deadline earlier than the alarm cancels it. Moving the timer
        cost two events each time (cancelled, started); a kept alarm costs nothing while the case
        closes or moves its deadline earlier first, else one wake-up (fired, a workflow task, started:
        five events) for however many moves it absorbed. A run that ends leaves its alarm unfired:
        no cancel either. Deadlines keep their instants: an alarm never rings after the next one."""
        timed = await self._wait_unless_timed()
        if timed is None:
            return
        version, wake, kind, changed = timed
        if wake > workflow.now():
            alarm = self._arm(wake, kind)
            await workflow.wait_condition(lambda: changed() or alarm.task.done())
            if not alarm.task.done():
                return  # the case changed: the loop looks again (the alarm stays unless a deadline is earlier)
            self.alarm = None
            if workflow.now() < wake:
                return  # an alarm kept from an earlier deadline: the loop starts one for this one
        await self._send_due(kind, version)

    def _arm(self, wake: datetime, kind: str) -> _Alarm:
        """An alarm that rings at `wake` or before: the running one if it does, else a new one."""
        alarm = self.alarm
        if alarm is not None and not alarm.task.done():
            if alarm.at <= wake:
                return alarm
            alarm.task.cancel()  # the deadline moved earlier: the one case a timer is cancelled
        task = asyncio.ensure_future(workflow.sleep(wake - workflow.now(), summary=kind))
        self.alarm = _Alarm(wake, task)
        return self.alarm

    async def _send_due(self, kind: str, version: int) -> None:
        """Send the case's own command for the timer `kind` that fell due at `version`."""
        extra = {}
        if kind == "attempt_callback":  # the survey throttle needs the customer's last survey
            survey = LastSurvey(customer_id=self._state.customer.id)
            if self.lean:
                extra["last_survey_at"] = await workflow.execute_local_activity_method(
                    FollowUpActivities.last_survey_at, survey,
                    start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)
            else:
                extra["last_survey_at"] = await workflow.execute_activity_method(
                    FollowUpActivities.last_survey_at, survey,
                    start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)
        # The id comes from the case's own state, so a retried or replayed task sends the same command.
        due = COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": timer_command_id(kind, version),
                                               "actor": ENGINE, **extra})
        try:
            await self._execute(due, origin="engine")
        except ApplicationError as err:  # a command in the same instant moved the case on
            workflow.logger.info("timer command refused", extra={"kind": kind, "reason": str(err)})
        if self._state.version == version:
            self.spent_timer = (kind, version)
            workflow.logger.warning("timer command changed nothing", extra={"kind": kind, "version": version})

    @workflow.update(name=OPEN_UPDATE)
    async def open(self, cmd: OpenCase) -> CaseState:
        """Opening an open case returns it unchanged: intake is idempotent."""
        await workflow.wait_condition(lambda: self.verified or self.open_refused is not None)
        if not self.verified and self.open_refused is not None:
            raise self.open_refused
        return answer(self._state)

    @workflow.update(dynamic=True)
    async def command(self, name: str, args: Sequence[RawValue]) -> CaseState:
        parsed, self._parsed = self._parsed, None
        if parsed is not None and len(args) == 1 and parsed[0] is args[0].payload:
            cmd = parsed[1]  # the validator's, from this very payload
        else:
            cmd = self._parse(name, args)  # replayed without the validator, or not validated
        await workflow.wait_condition(lambda: self.verified)  # sent right after the start
        return await self._execute(cmd)

    async def _terms_for(self, cmd: Command) -> SlaTerms | None:
        """The policy's terms a command pins, for the case as it is now (call under the lock)."""
        if isinstance(cmd, ReapplyPolicy):
            return await self._load_terms(self._state)
        if isinstance(cmd, Retriage) and self._state.sla is not None:
            # Re-triage retargets the running clocks with the targets of the new priority/category,
            # chosen by the policy version pinned on the case (an edited file is a supervisor's to
            # apply, with reapply_policy); terms pinned before the policy was read the file.
            case, pinned = self._state, self._state.sla.policy
            if pinned is not None:
                return pinned.terms_for(cmd.priority or case.priority, case.customer.tier,
                                        cmd.category or case.category, case.channel)
            return await self._load_terms(case, priority=cmd.priority, category=cmd.category)
        return None

    async def _load_terms(self, case: OpenCase | CaseState, priority=None, category=None) -> SlaTerms:
        terms_for = TermsFor(priority=priority or case.priority, tier=case.customer.tier,
                             category=category or case.category, channel=case.channel)
        if self.lean:
            # In this worker, inside the workflow task: the opening no longer waits for an activity
            # task's round trip through the server and a second workflow task (six events, one marker now).
            return await workflow.execute_local_activity_method(
                SlaPolicyActivities.load_sla_terms, terms_for,
                start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)
        return await workflow.execute_activity_method(
            SlaPolicyActivities.load_sla_terms, terms_for,
            start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)

    @command.validator
    def _validate(self, name: str, args: Sequence[RawValue]) -> None:
        # Runs before the update is written to history: a refusal here leaves no trace anywhere.
        self._parsed = None
        cmd = self._parse(name, args)
        self._parsed = (args[0].payload, cmd)
        if self._known(cmd):
            return  # a retry: answered with the case as it is
        if not self.verified:
            return  # still opening (its policy is being read): decided once the case is open
        if self._past_hard_limit():
            # The run is handing over to a fresh one and Temporal's caps are near; nothing was stored,
            # and the same command sent again lands on the new run. (Below the caps a command is taken:
            # an accepted command wakes the main loop, which hands over once the handlers finish; a
            # refusal would not wake it, and a run due to hand over could refuse every command.)
            raise ApplicationError(f"command '{name}' not taken: case {self.state.case_id} is "
                                   "continuing as new; send it again", "continuing_as_new",
                                   type="CommandRefused")
        try:
            if isinstance(cmd, ReapplyPolicy):
                # The terms are read after acceptance; everything else is checked as the handler does.
                check_time(self.state, cmd, workflow.now())
                check_allowed(self.state, cmd)
            else:
                decide(self.state, cmd, workflow.now())
        except CommandRefused as err:
            if self.forgot or self.resync:
                return  # it may be a retry of a command this run no longer knows: the store decides
            raise refusal(err.code, err.message) from None

    def _known(self, cmd: Command) -> bool:
        digest = self.known.get(cmd.command_id)
        if digest is None:
            return False
        if digest not in ("", cmd.digest()):
            raise reused(cmd.command_id, self.state.case_id if self.state else "?")
        return True

    @workflow.update(name=FORGET_UPDATE)
    async def forget_personal_data(self, req: ForgetPersonalData) -> str:
        """The customer's key was destroyed: read the case back from the store, where their personal
        fields no longer open, and continue as new, so the case's current run no longer carries them.
        The caller is not believed: while the key lives the store reads the same case, and nothing
        changes. Returns this run's id (the caller waits for a newer one)."""
        await workflow.wait_condition(lambda: self.verified)
        if self._state.customer.id != req.customer_id:
            return workflow.info().run_id
        async with self.lock:
            stored = await workflow.execute_local_activity_method(
                CaseStoreActivities.read_case, ReadCase(case_id=self._state.case_id),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)
            if stored is not None and stored.version == self._version and stored != self._state:
                self.state = stored
                self.forgetting = True
        return workflow.info().run_id

    @forget_personal_data.validator
    def _validate_forget(self, req: ForgetPersonalData) -> None:
        if req.actor.role not in (Role.supervisor, Role.system):
            raise ApplicationError(f"'{FORGET_UPDATE}' refused: role '{req.actor.role.value}' may not "
                                   "(supervisors and the engine only)", "role_not_allowed", type="CommandRefused")

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

    async def _execute(self, cmd: Command, terms: SlaTerms | None = None, origin: str = "caller") -> CaseState:
        # Counted on entry, before the lock, so validators see commands still waiting their turn.
        self.commands_this_run += 1
        mine = _Queued(cmd, origin)
        self.queue.append(mine)
        async with self.lock:
            if not mine.done:  # else decided in the batch of a command queued before it
                if terms is not None or self._pins_terms(cmd):
                    self.queue.remove(mine)
                    await self._decide_alone(mine, terms)
                else:
                    await self._decide_batch(mine)
        if mine.error is not None:
            raise mine.error
        workflow.logger.info("command applied", extra={
            "case_id": self._state.case_id, "command": cmd.kind, "stage": self._state.stage.value})  # type: ignore[attr-defined]
        assert mine.state is not None
        return answer(mine.state)

    def _pins_terms(self, cmd: Command) -> bool:
        """Whether the command pins SLA terms read for the case as it is (decided on its own)."""
        return isinstance(cmd, ReapplyPolicy) or (isinstance(cmd, Retriage) and self._state.sla is not None)

    async def _decide_alone(self, mine: _Queued, terms: SlaTerms | None) -> None:
        for _ in range(TERMS_ATTEMPTS):
            # The terms are read here, under the lock, for the case this command is decided on:
            # read before it, a re-triage and a reapply_policy sent together would pin terms for
            # a priority the case no longer has. The store refuses terms chosen for another
            # shape of the case (`stale_terms`, when it held more than this run knew): the
            # outcome brought the newer events, so read again.
            given = terms if terms is not None else await self._terms_for(mine.cmd)
            outcome = await self._store_step(mine.cmd, given, mine.origin)
            if outcome.refusal is None or outcome.refusal.code != "stale_terms" or terms is not None:
                break
        self._answer(mine, outcome)

    async def _decide_batch(self, mine: _Queued) -> None:
        # One pass of the event loop first, so every update delivered with this one is queued too.
        await workflow.wait_condition(lambda: True)
        # In arrival order from this command (the first waiting: the lock is first come, first served),
        # up to the first command that pins terms, which then keeps its place and is decided alone.
        batch, size = [], 0
        for queued in self.queue[self.queue.index(mine):]:
            if queued.done:
                continue
            if queued is not mine and self._pins_terms(queued.cmd):
                break
            size += len(queued.cmd.model_dump_json())
            if batch and (len(batch) == BATCH_MAX or size > BATCH_BYTES):
                break
            batch.append(queued)
        for queued in batch:
            self.queue.remove(queued)
        todo = []
        for queued in batch:
            try:
                if self._known(queued.cmd):
                    queued.state = self._state  # a retried command: applied once already
                    continue
            except ApplicationError as err:
                queued.error = err
                continue
            todo.append(queued)
        if not todo:
            return
        case_id = self._state.case_id
        outcomes = await workflow.execute_local_activity_method(
            CaseStoreActivities.execute_batch,
            ExecuteBatch(case_id=case_id, now=workflow.now(), after=self._version,
                         items=[BatchItem(command=q.cmd, origin=q.origin) for q in todo]),
            start_to_close_timeout=timedelta(seconds=60), retry_policy=STORE_RETRY)
        stale = []
        for queued, outcome in zip(todo, outcomes, strict=True):
            self._adopt(outcome, publish=False)
            if outcome.refusal is not None and outcome.refusal.code == "stale_terms":
                stale.append(queued)  # it pins terms after all: decided again, on its own
            else:
                self._answer(queued, outcome)
        if any(outcome.events for outcome in outcomes):
            self._publish_search_attributes()  # once for the batch: each upsert is a history event
        for queued in stale:
            await self._decide_alone(queued, None)

    def _answer(self, queued: _Queued, outcome: Outcome) -> None:
        if outcome.refusal is not None:
            queued.error = refusal(outcome.refusal.code, outcome.refusal.message)
        else:
            queued.state = self._state

    async def _sync(self) -> None:
        """Adopt what the store holds beyond this workflow's version (after a reset)."""
        async with self.lock:
            self.resync = False
            await self._store_step(None)

    async def _store_step(self, cmd: Command | None, terms: SlaTerms | None = None,
                          origin: str = "caller") -> Outcome:
        """One command (or, with None, only a read) in a store step of its own; adopts the outcome."""
        case_id = self.state.case_id if self.state else cmd.case_id  # type: ignore[union-attr]
        # A local activity: the step runs in this worker without a trip through the server's task
        # queue (measured in bench/README.md). It may run again when this task is retried; the store
        # answers a retry with what it stored the first time.
        outcome = await workflow.execute_local_activity_method(
            CaseStoreActivities.execute_command,
            ExecuteCommand(case_id=case_id, command=cmd, now=workflow.now(), after=self._version, terms=terms,
                           origin=origin),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=STORE_RETRY)
        self._adopt(outcome)
        return outcome

    def _adopt(self, outcome: Outcome, publish: bool = True) -> None:
        if outcome.after != self._version:
            # Cannot happen under the lock; a plain error fails the task (retried), never the case.
            raise RuntimeError(f"store step answered after {outcome.after}, case at {self._version}")
        for event in outcome.events:
            self.state = evolve(self.state, event)
            self.timeline.append(TimelineEntry(
                type=event.type, at=event.at, actor_id=event.actor.id, role=event.actor.role.value,
                stage=self.state.stage.value, command_id=event.command_id))
            self._remember(event.command_id, event.command_digest)
        if outcome.events:
            del self.timeline[:-TIMELINE_KEPT]
            if publish:
                self._publish_search_attributes()

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
            raise ApplicationError(f"command '{name}' has a malformed payload: {in_words(err)}",
                                   "malformed", type="CommandRefused") from None

    def _publish_search_attributes(self) -> None:
        state = self._state
        dues = [c.due for c in clock_views(state, workflow.now()) if c.state == "running" and c.due is not None]
        updates = [
            CASE_STAGE.value_set(state.stage.value), CASE_PRIORITY.value_set(state.priority.value),
            CASE_TIER.value_set(state.customer.tier.value),
            CASE_ESCALATION_LEVEL.value_set(state.escalation_level),
            CASE_SLA_BREACHED.value_set(bool(state.sla_breached)),
            CASE_CATEGORY.value_set(state.category.value),
            CASE_ASSIGNEE.value_set(state.assignee) if state.assignee else CASE_ASSIGNEE.value_unset(),
            CASE_TEAM.value_set(state.team) if state.team else CASE_TEAM.value_unset(),
            CASE_NEXT_DUE.value_set(min(dues)) if dues else CASE_NEXT_DUE.value_unset()]
        # Each upsert is an event in the run's history: only when something changed (a note does not).
        published = [(u.key.name, getattr(u, "value", None)) for u in updates]
        if published != self._published:
            # An upsert merges into what the run holds: only the attributes that changed (the first
            # one of a run sets them all), a smaller event and fewer conversions per command.
            changed = updates if self._published is None else [
                u for u, now, before in zip(updates, published, self._published, strict=True) if now != before]
            workflow.upsert_search_attributes(changed)
            self._published = published
        # The UI's "current details" of the run: read from the state, so a forgotten customer's
        # text leaves them as soon as the case reads "[forgotten]".
        workflow.set_current_details(case_summary(state.subject, state.customer.name))

    def _remember(self, command_id: str, digest: str) -> None:
        if command_id in self.known:
            return
        self.known[command_id] = digest
        if len(self.known) > KNOWN_COMMAND_IDS:
            del self.known[next(iter(self.known))]
            self.forgot = True

    def _own_case_id(self) -> str:
        workflow_id = workflow.info().workflow_id
        if not workflow_id.startswith(WORKFLOW_ID_PREFIX):
            raise ApplicationError(f"a case's workflow id is '{WORKFLOW_ID_PREFIX}<case id>', not "
                                   f"'{workflow_id}'", "case_id_mismatch", type="CommandRefused",
                                   non_retryable=True)
        return case_id_of(workflow_id)

    def _past_hard_limit(self) -> bool:
        """Close to Temporal's own per-run caps (2,000 updates, 51,200 events): take no more here."""
        info = workflow.info()
        return self.commands_this_run >= HARD_COMMANDS or info.get_current_history_length() >= HARD_EVENTS

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (self.forgetting or self.commands_this_run >= self.inp.limits.max_commands_per_run
                or info.get_current_history_length() >= self.inp.limits.max_history_events
                or info.is_continue_as_new_suggested())

    @property
    def _version(self) -> int:
        return self.state.version if self.state else 0

    @property
    def _state(self) -> CaseState:
        assert self.state is not None
        return self.state
