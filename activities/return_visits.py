"""Return-visit plans' side effects: opening a visit's case through the Temporal client (so the case
is a workflow of its own, not a child, and idempotent: its id follows from its source reference), and
checking a plan command against the principal registry (whose secrets stay in the worker)."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client

from domain.commands import OpenCase
from domain.lifecycle import CommandRefused
from domain.principals import Registry
from domain.return_visits import PlanChange, SchedulePlan, plan_subject
from domain.store import Refusal


class PlanAuthorization(BaseModel):
    customer_id: str
    command: SchedulePlan | PlanChange


class ReturnVisitActivities:
    def __init__(self, client: Client, task_queue: str, credential=None, registry: Registry | None = None) -> None:
        self.client = client
        self.task_queue = task_queue
        self.credential = credential  # casework.principals.Credential: the engine signs its own openings
        self.registry = registry

    @activity.defn(name="open_return_visit")
    async def open_return_visit(self, opening: OpenCase) -> str:
        from casework.client import CaseworkClient  # the client module imports the workflows

        state = await CaseworkClient(self.client, self.task_queue, credential=self.credential).open_case(opening)
        return state.case_id

    @activity.defn(name="authorize_plan_command")
    def authorize_plan_command(self, inp: PlanAuthorization) -> Refusal | None:
        if self.registry is None:
            return None  # open mode (the worker warned at start)
        try:
            self.registry.check(plan_subject(inp.customer_id), inp.command, None)
        except CommandRefused as err:
            return Refusal(code=err.code, message=err.message)
        return None
