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
    from activities.return_visits import ReturnVisitActivities
    from domain.model import Actor, Role
    from domain.return_visits import ReturnVisitPlan, due_of, visit_case

RETURN_VISITS_TYPE = "ReturnVisits"
VISITS_PER_RUN = 40  # a run's history stays small; the plan continues as new after this many visits


class ReturnVisitsInput(BaseModel):
    plan: ReturnVisitPlan
    next_visit: int = 0
    paused: bool = False


class PlanChange(BaseModel):
    actor: Actor
    reason: str = ""


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
        self.opened: list[str] = []

    @workflow.run
    async def run(self, inp: ReturnVisitsInput) -> None:
        for _ in range(VISITS_PER_RUN):
            await self._wait_until_due()
            opening = visit_case(self.plan, self.next_visit, str(workflow.uuid4()), workflow.now())
            case_id = await workflow.execute_activity_method(
                ReturnVisitActivities.open_return_visit, opening, start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)))
            workflow.logger.info("return visit opened", extra={"case_id": case_id, "visit": self.next_visit})
            self.opened.append(case_id)
            self.next_visit += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(ReturnVisitsInput(plan=self.plan, next_visit=self.next_visit, paused=self.paused))

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
    def pause(self, change: PlanChange) -> PlanStatus:
        self.paused = True
        return self.status()

    @workflow.update
    def resume(self, change: PlanChange) -> PlanStatus:
        self.paused = False
        return self.status()

    @pause.validator
    def _check_pause(self, change: PlanChange) -> None:
        self._check_supervisor(change, "pause")

    @resume.validator
    def _check_resume(self, change: PlanChange) -> None:
        self._check_supervisor(change, "resume")

    def _check_supervisor(self, change: PlanChange, what: str) -> None:
        if change.actor.role is not Role.supervisor:
            raise ApplicationError(f"'{what}' of return visits refused: role '{change.actor.role.value}' "
                                   "may not (supervisors only)", "role_not_allowed", type="CommandRefused")

    @workflow.query
    def status(self) -> PlanStatus:
        return PlanStatus(plan=self.plan, next_visit=self.next_visit, next_due=due_of(self.plan, self.next_visit),
                          paused=self.paused, opened_case_ids=self.opened)
