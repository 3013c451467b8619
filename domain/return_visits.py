"""Periodic return visits for key accounts (seeds: every 6 months under warranty, quarterly while a
service is ongoing): when the next one falls due, and the case each visit opens. Pure."""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.commands import OpenCase
from domain.model import ENGINE, Customer, Instant

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
        command_id=command_id, actor=ENGINE, source={"system": "return-visits",
                                                     "external_id": f"{plan.customer.id}:{visit}"},
        customer=plan.customer, channel="on_site", category="return_visit", priority="normal",
        subject=f"Return visit {visit + 1} ({plan.basis.replace('_', ' ')}) for {plan.customer.name}",
        description=f"Periodic return visit every {plan.months} months", team=plan.team,
        assignee=plan.customer.dedicated_owner)
