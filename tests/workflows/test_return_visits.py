"""Return visits for key accounts: a long-lived plan opens a case each period; a missed visit escalates;
supervisors list, pause and resume plans. Offline time skipping on the real dev server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from casework.client import CommandRefused
from domain.ids import case_id_for
from domain.model import Actor, Role, SourceRef
from domain.return_visits import ReturnVisitPlan, add_months
from tests.conftest import sqlite_store
from tests.factory import SUPERVISOR
from tests.workflows.test_sla import SlaEngine, skipping_env  # noqa: F401 - the module's env fixture
from workflows.return_visits import PlanChange, return_visits_id


@pytest.fixture
def engine(skipping_env, tmp_path):  # noqa: F811
    return SlaEngine(skipping_env, sqlite_store(tmp_path / "events.db"), f"rv-{uuid.uuid4()}")


def plan_for(customer_id: str, first_due: datetime) -> ReturnVisitPlan:
    return ReturnVisitPlan(customer={"id": customer_id, "name": "Big Co", "tier": "key_account",
                                     "dedicated_owner": "owner-olga"},
                           basis="ongoing_service", first_due=first_due)


async def forward_plan(engine, customer_id: str, duration: timedelta) -> None:
    handle = engine.env.client.get_workflow_handle(return_visits_id(customer_id))
    assert await engine.env.fast_forward(handle, duration)
    await asyncio.sleep(0.5)


def test_months_are_added_on_the_calendar():
    assert add_months(datetime(2026, 8, 31, tzinfo=UTC), 6) == datetime(2027, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 15, tzinfo=UTC), 3) == datetime(2027, 2, 15, tzinfo=UTC)


async def test_a_plan_opens_its_visits_on_time_and_a_missed_visit_escalates(engine):
    customer = f"ka-{uuid.uuid4().hex[:6]}"
    async with engine.worker():
        now = datetime.now(UTC)
        status = await engine.cases.schedule_return_visits(plan_for(customer, now + timedelta(days=2)))
        assert status.next_visit == 0 and not status.paused
        await forward_plan(engine, customer, timedelta(days=1))
        assert (await engine.cases.schedule_return_visits(plan_for(customer, now))).opened_case_ids == []
        await forward_plan(engine, customer, timedelta(days=1, hours=1))
        status = await engine.cases.schedule_return_visits(plan_for(customer, now))
        assert len(status.opened_case_ids) == 1 and status.next_visit == 1
        first = status.opened_case_ids[0]
        assert first == case_id_for(SourceRef(system="return-visits", external_id=f"{customer}:0"))
        case = await engine.cases.state(first)
        assert (case.category.value, case.assignee, case.customer.dedicated_owner) == (
            "return_visit", "owner-olga", "owner-olga")
        # The case opens at the engine's time (lines above: not after one day, yes after two); in this
        # test server each workflow has its own virtual clock, so the instants themselves differ.
        # Nobody makes the visit: its clocks breach and the case escalates. (The case runs on its own
        # virtual clock, which starts at the real time: two days behind the plan's.)
        await engine.forward(first, timedelta(days=2, hours=5))
        missed = await engine.cases.state(first)
        # Three months on, the next visit opens.
        await forward_plan(engine, customer, timedelta(days=95))
        status = await engine.cases.schedule_return_visits(plan_for(customer, now))
    assert missed.sla_breached and missed.escalation_level >= 1
    assert engine.events(first, "CaseEscalated")
    assert len(status.opened_case_ids) == 2 and status.next_visit == 2


async def test_supervisors_list_pause_and_resume_plans(engine):
    customer = f"ka-{uuid.uuid4().hex[:6]}"
    async with engine.worker():
        now = datetime.now(UTC)
        await engine.cases.schedule_return_visits(plan_for(customer, now + timedelta(days=1)))
        with pytest.raises(CommandRefused) as refused:
            await engine.cases.change_return_visits(customer, "pause", PlanChange(
                actor=Actor(id="agent-alice", role=Role.agent)))
        assert refused.value.code == "role_not_allowed"
        paused = await engine.cases.change_return_visits(customer, "pause", PlanChange(actor=SUPERVISOR,
                                                                                      reason="site closed"))
        assert paused.paused
        await forward_plan(engine, customer, timedelta(days=3))
        assert (await engine.cases.schedule_return_visits(plan_for(customer, now))).opened_case_ids == []
        resumed = await engine.cases.change_return_visits(customer, "resume", PlanChange(actor=SUPERVISOR))
        assert not resumed.paused and resumed.next_visit == 1  # the visit due while paused is skipped
        for _ in range(50):  # visibility is eventually consistent
            listed = [p.plan.customer.id for p in await engine.cases.return_visit_plans()]
            if customer in listed:
                break
            await asyncio.sleep(0.2)
    assert customer in listed
