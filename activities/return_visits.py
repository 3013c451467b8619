"""Return-visit plans' side effects: opening a visit's case through the Temporal client (so the case
is a workflow of its own, not a child, and idempotent: its id follows from its source reference), and
checking a plan command against the principal registry (whose secrets stay in the worker)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.case_store import only_local

from domain.lifecycle import CommandRefused
from domain.principals import Registry
from domain.return_visits import PlanChange, ReturnVisitPlan, SchedulePlan, plan_subject, visit_case
from domain.store import Refusal


class PlanAuthorization(BaseModel):
    customer_id: str
    command: SchedulePlan | PlanChange


class PlanGrant(BaseModel):
    """The answer to a plan command: its refusal, or for an authorized `schedule` the grant that lets
    the plan's visits be opened (an HMAC by the worker's own credential over the plan)."""

    refusal: Refusal | None = None
    grant: str = ""


class VisitOpening(BaseModel):
    plan: ReturnVisitPlan
    visit: int
    grant: str
    command_id: str
    now: datetime  # the plan's time: the case opens at it


GRANT_SCHEME = "casework-plan-v1"


class ReturnVisitActivities:
    def __init__(self, client: Client, task_queue: str, credential=None, registry: Registry | None = None) -> None:
        self.client = client
        self.task_queue = task_queue
        self.credential = credential  # casework.principals.Credential: the engine signs its own openings
        self.registry = registry

    def _grant(self, plan: ReturnVisitPlan) -> str:
        text = f"{GRANT_SCHEME}\n{plan.model_dump_json()}"
        return hmac.new(self.credential.secret.get_secret_value().encode(), text.encode(), hashlib.sha256).hexdigest()

    @activity.defn(name="open_return_visit")
    async def open_return_visit(self, inp: VisitOpening) -> str:
        """Open the visit's case. Any workflow in the namespace can ask for this activity, so it opens
        only a visit of a plan the registry authorized (its grant), built here from the plan."""
        from casework.client import CaseworkClient  # the client module imports the workflows

        if self.registry is not None and (self.credential is None or not hmac.compare_digest(
                inp.grant, self._grant(inp.plan))):
            raise ApplicationError("return visit refused: the plan carries no grant of this engine "
                                   "(schedule it with a signed `schedule` command)", "unauthenticated",
                                   type="CommandRefused", non_retryable=True)
        # Which visit and when come from the plan's workflow: a grant's holder could open a visit of an
        # authorized plan early, once (a visit's case id follows from its number), nothing else.
        opening = visit_case(inp.plan, inp.visit, inp.command_id, inp.now)
        state = await CaseworkClient(self.client, self.task_queue, credential=self.credential).open_case(opening)
        return state.case_id

    @activity.defn(name="authorize_plan_command")
    def authorize_plan_command(self, inp: PlanAuthorization) -> PlanGrant:
        only_local()
        if self.registry is not None:
            try:
                self.registry.check(plan_subject(inp.customer_id), inp.command, None)
            except CommandRefused as err:
                return PlanGrant(refusal=Refusal(code=err.code, message=err.message))
            if isinstance(inp.command, SchedulePlan) and self.credential is None:
                return PlanGrant(refusal=Refusal(code="no_engine_credential", message=(
                    "this engine has no credential of its own (CASEWORK_PRINCIPAL, CASEWORK_PRINCIPAL_SECRET_FILE) "
                    "to open return visits under a principal registry")))
        if isinstance(inp.command, SchedulePlan):
            return PlanGrant(grant=self._grant(inp.command.plan) if self.credential else "")
        return PlanGrant()
