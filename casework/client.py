"""The Python client: open cases, send commands, read state and timeline, with refusals as exceptions."""

from __future__ import annotations

import asyncio
import json
import re
import contextlib
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio.client import (
    Client, WithStartWorkflowOperation, WorkflowExecutionStatus, WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from casework.codec import decode_in_place
from casework.config import Settings
from casework.connection import connect_options
from domain.clocks import ClockView
from domain.commands import Command, OpenCase
from domain.ids import case_id_for, workflow_id_for
from domain.lifecycle import CommandRefused  # one refusal, from the rules to every caller
from domain.model import CaseState
from domain.reopen import REOPENING, follow_up_opening, may_reopen
from domain.return_visits import PlanChange, ReturnVisitPlan, SchedulePlan, plan_subject
from domain.return_visits import PLANNER
from casework.principals import Credential
from workflows.return_visits import (
    RETURN_VISITS_TYPE, PlanStatus, ReturnVisitsInput, return_visits_id,
)
from workflows.contract import (
    CLOCKS_QUERY, DEFAULT_TASK_QUEUE, OPEN_UPDATE, STATE_QUERY, TIMELINE_QUERY, WORKFLOW_TYPE, CaseInput, Limits,
    TimelineEntry, case_summary,
)


# A long case hands over to a new run now and then; a command sent in that instant is sent again.
HANDOVER_RETRIES = 100
# An update aborted because its workflow task was lost (worker killed), or a server restarting.
# A poll that timed out (CANCELLED "Timeout expired") is asked again: the same update id attaches to
# the same update, or, if its case closed meanwhile, finds whether it was applied.
TRANSIENT = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.ABORTED, RPCStatusCode.DEADLINE_EXCEEDED,
                       RPCStatusCode.CANCELLED,
                       RPCStatusCode.RESOURCE_EXHAUSTED})  # and the per-case cap on updates in flight
UPDATE_POLL = timedelta(seconds=10)
# Temporal admits at most `history.maxInFlightUpdates` (default 10) updates at once per workflow and
# answers the rest ResourceExhausted. Past that limit the server aborts in-flight updates and drops
# their speculative workflow tasks ("Workflow task not found"), over and over while the senders retry:
# a burst of 30 commands on one case took minutes, and the fault run stalled. A client therefore keeps
# its own commands on one case under the limit and queues the rest here (bench/README.md, issue 9).
IN_FLIGHT_PER_CASE = 8


class _RunReplaced(Exception):
    """The update's run was replaced while it was in flight; the case still runs."""


class CaseNotFound(CommandRefused):
    def __init__(self, case_id: str) -> None:
        super().__init__("unknown_case", f"no case with id {case_id}")


C = TypeVar("C", bound=Command)


async def connect(address: str = "localhost:7233", namespace: str | None = None, *,
                  settings: Settings | None = None, embedded: bool = False) -> Client:
    """A client for `address` set up from `settings` (namespace, TLS, API key, payload encryption;
    casework/connection.py); without settings, plaintext with the pydantic converter. `embedded`: the
    engine's own dev server, plaintext on loopback, so TLS and API key settings do not apply."""
    options = connect_options(settings, embedded=embedded) if settings else {"data_converter": pydantic_data_converter}
    if namespace is not None:
        options["namespace"] = namespace
    return await Client.connect(address, **options)


class CaseworkClient:
    def __init__(self, client: Client, task_queue: str = DEFAULT_TASK_QUEUE,
                 limits: Limits | None = None, credential: Credential | None = None) -> None:
        self.client = client
        self.task_queue = task_queue
        self.limits = limits or Limits()
        self.credential = credential  # signs every command (domain/principals.py); None: unsigned
        self._in_flight: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}  # case id -> slots, users

    def _signed(self, subject: str, cmd: C) -> C:
        return self.credential.sign(subject, cmd) if self.credential else cmd

    async def open_case(self, cmd: OpenCase) -> CaseState:
        """Open a case, or return the existing one with the same source reference (or case id)."""
        if not cmd.case_id:
            cmd = cmd.model_copy(update={"case_id": case_id_for(cmd.source)})
        assert cmd.case_id is not None
        cmd = self._signed(cmd.case_id, cmd)
        start = WithStartWorkflowOperation(
            WORKFLOW_TYPE, CaseInput(open=cmd, limits=self.limits), id=workflow_id_for(cmd.case_id),
            task_queue=self.task_queue, result_type=CaseState,
            static_summary=case_summary(cmd.subject, cmd.customer.name),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A closed case stays closed: opening it again returns it, it never starts a second run.
            # A refused opening fails its run, which keeps nothing from a corrected one.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        try:
            return await self.client.execute_update_with_start_workflow(
                OPEN_UPDATE, cmd, start_workflow_operation=start, result_type=CaseState)
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from None
        except WorkflowAlreadyStartedError:
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await start.workflow_handle()  # the same refusal; collected so it is not reported as lost
            return await self.state(cmd.case_id)

    async def send(self, case_id: str, cmd: Command) -> CaseState:
        """Apply one lifecycle command; the update id is the command id, so a retry applies once.

        Sent again, with the same id, when the case hands over to a new run or when the server aborts
        the update because the worker running it died: the answer is the command's one outcome.
        """
        cmd = self._signed(case_id, cmd)
        async with self._slot(case_id):
            try:
                return await self._send_with_retries(case_id, cmd)
            except CommandRefused as err:
                if err.code != "reopen_window_passed":
                    raise
        # Too late to reopen (domain/reopen.py): the command opens a follow-up case linked to this one.
        return await self.open_case(follow_up_opening(await self.state(case_id), cmd))

    @contextlib.asynccontextmanager
    async def _slot(self, case_id: str):
        """One of the case's IN_FLIGHT_PER_CASE slots for an update (forgotten when nobody holds or waits)."""
        slots, users = self._in_flight.setdefault(case_id, (asyncio.Semaphore(IN_FLIGHT_PER_CASE), [0]))
        users[0] += 1
        try:
            async with slots:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._in_flight[case_id]

    async def _send_with_retries(self, case_id: str, cmd: Command) -> CaseState:
        for attempt in range(HANDOVER_RETRIES):
            try:
                return await self._send_once(case_id, cmd)
            except CommandRefused as err:
                if err.code != "continuing_as_new" or attempt == HANDOVER_RETRIES - 1:
                    raise
            except _RunReplaced:
                if attempt == HANDOVER_RETRIES - 1:
                    raise RuntimeError(f"case {case_id}: the update kept landing on replaced runs") from None
            except RPCError as err:
                if err.status not in TRANSIENT or attempt == HANDOVER_RETRIES - 1:
                    raise
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                if attempt == HANDOVER_RETRIES - 1:
                    raise  # a slow case is asked again with the same update id: it attaches, not repeats
            # The SDK reports its RPC cancelled when this task is: a caller that gave up (a timeout)
            # is not a slow case to ask again.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError()
            await asyncio.sleep(min(0.05 * (attempt + 1), 1.0))
        raise AssertionError("unreachable")

    async def _send_once(self, case_id: str, cmd: Command) -> CaseState:
        kind = cmd.kind  # type: ignore[attr-defined]
        handle = self.client.get_workflow_handle(workflow_id_for(case_id))
        # The update id carries the digest: the server answers a repeated update id from its own record,
        # so a command id reused for another command must reach the case as another update (refused).
        update_id = f"{cmd.command_id}#{cmd.digest()}"
        state = await _unless_not_found(handle.execute_update(
            kind, cmd, id=update_id, result_type=CaseState, rpc_timeout=UPDATE_POLL))
        if state is not None:
            return state
        # No running case: unknown, or closed — perhaps by this very command, whose answer was lost.
        # Its outcome is in the closed run's history; polling it needs no worker (a query would).
        state = await _unless_not_found(
            handle.get_update_handle(update_id, result_type=CaseState).result(rpc_timeout=UPDATE_POLL))
        if state is not None:
            return state
        try:
            described = await handle.describe()
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise CaseNotFound(case_id) from None
            raise
        if described.status is WorkflowExecutionStatus.RUNNING:
            # The run the update was sent to was replaced (a reset, a continue-as-new): send it again.
            raise _RunReplaced()
        # Closed. The command may have been stored by a task whose update was then aborted, or long ago
        # in an earlier run: the case's runs hold every stored event, each naming its command and digest.
        # Read from the run just described, by its run id: another sender may start a new run of the
        # case at any moment (a reopening reply), and a handle without a run id waits for *that* run's
        # end, which a reopened case may never reach (two replies at once hung so).
        closed_run = self.client.get_workflow_handle(handle.id, run_id=described.run_id, result_type=CaseState)
        found = await self._stored_digest(handle.id, cmd.command_id)
        if found == cmd.digest():
            if described.status is WorkflowExecutionStatus.COMPLETED:
                return await closed_run.result(follow_runs=False)
            return await self.state(case_id)
        if found is not None:
            raise CommandRefused("command_id_reused", f"command id {cmd.command_id} was already used by "
                                 f"another command on case {case_id}")
        if isinstance(cmd, REOPENING) and described.status is WorkflowExecutionStatus.COMPLETED:
            return await self._reopen(case_id, cmd, update_id, await closed_run.result(follow_runs=False))
        raise CommandRefused("case_closed", f"command '{kind}' refused: case {case_id} is in stage 'closed'")

    async def _reopen(self, case_id: str, cmd: Command, update_id: str, closed: CaseState) -> CaseState:
        """A customer's reply or rejection on a closed case (domain/reopen.py): a new run of the case's
        workflow (same id) starts from the store and takes the command; the store decides it, so two
        reopening commands at once reopen once (the second lands on the same run, or is decided on
        what the first stored). After the reopen window the command opens a follow-up case instead,
        linked to this one; the answer is then that case (its case_id differs, follow_up_of names
        this one). `closed` is the closed run's result: the case as it closed, whether or not another
        sender's reopening has started a new run since."""
        workflow_id = workflow_id_for(case_id)
        if not may_reopen(closed, cmd):
            raise CommandRefused("case_closed", f"command '{cmd.kind}' refused: case {case_id} is in stage "  # type: ignore[attr-defined]
                                 "'closed'")
        start = WithStartWorkflowOperation(
            WORKFLOW_TYPE, CaseInput(state=closed, forgot_commands=True, limits=self.limits), id=workflow_id,
            task_queue=self.task_queue, result_type=CaseState,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # The run of a closed case completed; a new one may start (a failed run keeps nothing).
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        try:
            return await self.client.execute_update_with_start_workflow(
                cmd.kind, cmd, start_workflow_operation=start, id=update_id,  # type: ignore[attr-defined]
                result_type=CaseState, rpc_timeout=UPDATE_POLL)
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from None

    async def _stored_digest(self, workflow_id: str, command_id: str) -> str | None:
        """The digest stored with `command_id` on a closed case, newest run first; None if never stored.

        Read as the store step's outcome writes a stored event, or as a continued run's input carries
        its known ids: never from the update's own request (which names the id but not in these forms).
        """
        quoted = re.escape(json.dumps(command_id, ensure_ascii=False))
        patterns = [re.compile(rf'"command_id":{quoted},"command_digest":"([0-9a-f]{{32}})"'.encode()),
                    re.compile(rf'{quoted}:"([0-9a-f]{{32}})"'.encode())]
        codec = self.client.data_converter.payload_codec
        runs = [wf.run_id async for wf in self.client.list_workflows(f'WorkflowId = "{workflow_id}"')]
        for run_id in runs or [None]:  # visibility lists newest first; without it, the latest run
            handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
            async for event in handle.fetch_history_events():
                if codec is not None:  # encrypted payloads (casework/codec.py) are searched as written
                    await decode_in_place(event, codec)
                data = event.SerializeToString()
                for pattern in patterns:
                    if match := pattern.search(data):
                        return match.group(1).decode()
        return None

    async def state(self, case_id: str) -> CaseState:
        state = await self._state_or_none(case_id)
        if state is None:
            raise CaseNotFound(case_id)
        return state

    async def clocks(self, case_id: str, at: datetime | None = None) -> list[ClockView]:
        """Each SLA clock measured at `at` (default: now)."""
        handle = self.client.get_workflow_handle(workflow_id_for(case_id))
        return await handle.query(CLOCKS_QUERY, at or datetime.now(UTC), result_type=list[ClockView])

    async def wait_closed(self, case_id: str) -> CaseState:
        """Block until the case closes; returns its final state."""
        handle = self.client.get_workflow_handle(workflow_id_for(case_id), result_type=CaseState)
        return await handle.result()

    async def timeline(self, case_id: str) -> list[TimelineEntry]:
        handle = self.client.get_workflow_handle(workflow_id_for(case_id))
        try:
            return await handle.query(TIMELINE_QUERY, result_type=list[TimelineEntry])
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                raise CaseNotFound(case_id) from None
            raise

    async def schedule_return_visits(self, plan: ReturnVisitPlan | SchedulePlan) -> PlanStatus:
        """Start (or find) the customer's return-visit plan; a bare plan is scheduled by the engine."""
        cmd = plan if isinstance(plan, SchedulePlan) else SchedulePlan(actor=PLANNER, plan=plan)
        cmd = self._signed(plan_subject(cmd.plan.customer.id), cmd)
        start = WithStartWorkflowOperation(
            RETURN_VISITS_TYPE, ReturnVisitsInput(plan=cmd.plan), id=return_visits_id(cmd.plan.customer.id),
            task_queue=self.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        try:
            return await self.client.execute_update_with_start_workflow(
                "schedule", cmd, start_workflow_operation=start, result_type=PlanStatus)
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from None

    async def change_return_visits(self, customer_id: str, action: str, change: PlanChange) -> PlanStatus:
        handle = self.client.get_workflow_handle(return_visits_id(customer_id))
        change = self._signed(plan_subject(customer_id), change.model_copy(update={"kind": action}))
        try:
            return await handle.execute_update(action, change, result_type=PlanStatus)
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from None

    async def return_visit_plans(self) -> list[PlanStatus]:
        """Every running plan, as supervisors list them."""
        found = []
        async for wf in self.client.list_workflows(
                f"WorkflowType = '{RETURN_VISITS_TYPE}' AND ExecutionStatus = 'Running' "
                f"AND TaskQueue = '{self.task_queue}'"):
            found.append(await self.client.get_workflow_handle(wf.id).query("status", result_type=PlanStatus))
        return found

    async def _state_or_none(self, case_id: str) -> CaseState | None:
        handle = self.client.get_workflow_handle(workflow_id_for(case_id))
        try:
            return await handle.query(STATE_QUERY, result_type=CaseState | None)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                return None
            raise


async def _unless_not_found(update) -> CaseState | None:
    """An update's answer; its refusal raised as CommandRefused; None when the server has no such run."""
    try:
        return await update
    except WorkflowUpdateFailedError as err:
        raise _refusal(err) from None
    except RPCError as err:
        if err.status is not RPCStatusCode.NOT_FOUND:
            raise
        return None


def _refusal(err: WorkflowUpdateFailedError) -> CommandRefused:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        code = cause.details[0] if cause.details else cause.type or "refused"
        return CommandRefused(str(code), cause.message)
    return CommandRefused("failed", str(cause or err))
