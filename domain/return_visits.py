"""Periodic return visits for key accounts (seeds: every 6 months under warranty, quarterly while a
service is ongoing): when the next one falls due, and the case each visit opens. Pure."""

from __future__ import annotations

import calendar
import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from domain.commands import Command, OpenCase
from domain.model import Actor, Customer, Instant, Role

# Who opens a visit's case: the engine's planner, a system actor of its own (the engine's own id is
# for the case's timers only, which no caller may present).
PLANNER = Actor(id="return-visits", role=Role.system)
PERIOD_MONTHS = {"warranty": 6, "ongoing_service": 3}


class ReturnVisitPlan(BaseModel):
    customer: Customer
    basis: Literal["warranty", "ongoing_service"] = "warranty"
    period_months: int | None = Field(default=None, ge=1, le=60)  # default from the basis
    first_due: Instant  # aware, 1990-2099, stored in UTC: a naive time or year 9999 is refused here
    team: str | None = None

    @property
    def months(self) -> int:
        return self.period_months or PERIOD_MONTHS[self.basis]


def plan_subject(customer_id: str) -> str:
    """What a plan command's signature is bound to (as a case command's is to its case id)."""
    return f"return-visits-{customer_id}"


class PlanCommand(Command):
    """A command on a customer's return-visit plan: signed and checked like a case's commands."""

    command_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200)
    ROLES: ClassVar[frozenset[Role]] = frozenset({Role.supervisor})


class SchedulePlan(PlanCommand):
    kind: Literal["schedule"] = "schedule"
    plan: ReturnVisitPlan
    # Key-account managers (supervisors) plan visits; so may a backend that sells the contracts.
    ROLES: ClassVar[frozenset[Role]] = frozenset({Role.supervisor, Role.system})


class PlanChange(PlanCommand):
    """Pause or resume a plan (supervisors only)."""

    kind: Literal["pause", "resume"] = "pause"
    reason: str = Field(default="", max_length=2_000)


def add_months(t: datetime, months: int) -> datetime:
    """The same day-of-month `months` later, clamped to the month's end (31 Aug + 6 -> 28/29 Feb)."""
    month0 = t.month - 1 + months
    year, month = t.year + month0 // 12, month0 % 12 + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def due_of(plan: ReturnVisitPlan, visit: int) -> datetime:
    return add_months(plan.first_due, plan.months * visit)


def visit_case(plan: ReturnVisitPlan, visit: int, command_id: str, now: datetime) -> OpenCase:
    """The case a return visit opens; its id follows from the customer and the visit's number."""
    return OpenCase(
        # Opened by the engine when it falls due, at the engine's time (the plan's clock may run ahead).
        command_id=command_id, actor=PLANNER, source={"system": "return-visits",
                                                     "external_id": f"{plan.customer.id}:{visit}"},
        customer=plan.customer, channel="on_site", category="return_visit", priority="normal",
        subject=f"Return visit {visit + 1} ({plan.basis.replace('_', ' ')}) for {plan.customer.name}",
        description=f"Periodic return visit every {plan.months} months", team=plan.team,
        assignee=plan.customer.dedicated_owner)
