"""ReturnVisits: one long-lived workflow per key account that opens a return-visit case each period.

Each visit is a ServiceCase of its own (opened by an activity, so it is independent of this plan),
held to the SLA policy's return_visit targets, so a missed visit breaches and escalates like any case.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.return_visits import PlanAuthorization, ReturnVisitActivities, VisitOpening
    from domain.return_visits import PlanChange, PlanCommand, ReturnVisitPlan, SchedulePlan, due_of, visit_case

RETURN_VISITS_TYPE = "ReturnVisits"
VISITS_PER_RUN = 40  # a run's history stays small; the plan continues as new after this many visits


class ReturnVisitsInput(BaseModel):
    plan: ReturnVisitPlan
    next_visit: int = 0
    paused: bool = False
    # A plan opens visits only once a `schedule` command for it was authorized (carried on, with the
    # worker's grant over the plan: a start that claims `authorized` without a grant opens nothing).
    authorized: bool = False
    grant: str = ""


class PlanStatus(BaseModel):
    plan: ReturnVisitPlan
    next_visit: int
    next_due: datetime
    paused: bool
    opened_case_ids: list[str]


def return_visits_id(customer_id: str) -> str:
    return f"return-visits-{customer_id}"


@workflow.defn(name=RETURN_VISITS_TYPE)
class ReturnVisitsWorkflow:
    @workflow.init
    def __init__(self, inp: ReturnVisitsInput) -> None:
        self.plan, self.next_visit, self.paused = inp.plan, inp.next_visit, inp.paused
        self.authorized: bool | None = True if inp.authorized else None  # None: not decided yet
        self.grant = inp.grant
        self.opened: list[str] = []

    @workflow.run
    async def run(self, inp: ReturnVisitsInput) -> None:
        # Started by `schedule` (update with start): its authorization decides whether the plan runs.
        await workflow.wait_condition(lambda: self.authorized is not None)
        if not self.authorized:
            await workflow.wait_condition(workflow.all_handlers_finished)
            return
        for _ in range(VISITS_PER_RUN):
            await self._wait_until_due()
            opening = VisitOpening(plan=self.plan, visit=self.next_visit, grant=self.grant,
                                   command_id=str(workflow.uuid4()), now=workflow.now())
            case_id = await workflow.execute_activity_method(
                ReturnVisitActivities.open_return_visit, opening, start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)))
            workflow.logger.info("return visit opened", extra={"case_id": case_id, "visit": self.next_visit})
            self.opened.append(case_id)
            self.next_visit += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(ReturnVisitsInput(plan=self.plan, next_visit=self.next_visit, paused=self.paused,
                                                   authorized=True, grant=self.grant))

    async def _wait_until_due(self) -> None:
        """Sleep until the next visit is due; a visit that falls due while paused is skipped."""
        while True:
            remaining = due_of(self.plan, self.next_visit) - workflow.now()
            if remaining <= timedelta(0):
                if not self.paused:
                    return
                self.next_visit += 1
                continue
            paused_before = self.paused
            try:
                await workflow.wait_condition(lambda: self.paused != paused_before, timeout=remaining,
                                              timeout_summary="next return visit")
            except TimeoutError:
                pass

    @workflow.update
    async def schedule(self, cmd: SchedulePlan) -> PlanStatus:
        """Schedule (or find) the plan: the first authorized `schedule` lets it run. The plan that runs
        is the one the command signed, never the start's input (which anyone could have written)."""
        try:
            if cmd.plan.customer.id != self.plan.customer.id:
                raise ApplicationError(f"a plan for customer '{cmd.plan.customer.id}' cannot be scheduled on "
                                       f"the plan of '{self.plan.customer.id}'", "plan_mismatch",
                                       type="CommandRefused", non_retryable=True)
            grant = await self._authorize(cmd)
        except ApplicationError:
            if self.authorized is None:
                self.authorized = False
            raise
        if not self.authorized or cmd.plan != self.plan:
            self.plan, self.grant = cmd.plan, grant
        self.authorized = True
        return self.status()

    @workflow.update
    async def pause(self, change: PlanChange) -> PlanStatus:
        await self._authorize(change)
        self.paused = True
        return self.status()

    @workflow.update
    async def resume(self, change: PlanChange) -> PlanStatus:
        await self._authorize(change)
        self.paused = False
        return self.status()

    @schedule.validator
    def _check_schedule(self, cmd: SchedulePlan) -> None:
        self._check_role(cmd, "schedule")

    @pause.validator
    def _check_pause(self, change: PlanChange) -> None:
        self._check_role(change, "pause")

    @resume.validator
    def _check_resume(self, change: PlanChange) -> None:
        self._check_role(change, "resume")

    def _check_role(self, cmd: PlanCommand, what: str) -> None:
        if cmd.actor.role not in cmd.ROLES:
            allowed = ", ".join(sorted(r.value for r in cmd.ROLES))
            raise ApplicationError(f"'{what}' of return visits refused: role '{cmd.actor.role.value}' "
                                   f"may not (allowed: {allowed})", "role_not_allowed", type="CommandRefused")

    async def _authorize(self, cmd: PlanCommand) -> str:
        """The grant of an authorized `schedule` ("" for the others, and in open mode); raises the refusal."""
        # The registry and its secrets live in the worker, not in this workflow's history.
        answer = await workflow.execute_local_activity_method(
            ReturnVisitActivities.authorize_plan_command,
            PlanAuthorization(customer_id=self.plan.customer.id, command=cmd),
            start_to_close_timeout=timedelta(seconds=30))
        refusal = answer.refusal
        if refusal is not None:
            raise ApplicationError(refusal.message, refusal.code, type="CommandRefused", non_retryable=True)
        return answer.grant

    @workflow.query
    def status(self) -> PlanStatus:
        return PlanStatus(plan=self.plan, next_visit=self.next_visit, next_due=due_of(self.plan, self.next_visit),
                          paused=self.paused, opened_case_ids=self.opened)
