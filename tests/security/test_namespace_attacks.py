"""Attacks by anyone who can reach the Temporal namespace but holds no secret of the registry.

Such a caller can start any workflow type with any input and schedule any activity by name on
casework's task queue. None of it may write the store, read it past Temporal's own access control,
or open cases under the engine's authority.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.worker import Worker

from casework.client import CommandRefused
from domain.ids import case_id_for, workflow_id_for
from domain.model import Actor, Role, SourceRef
from domain.return_visits import ReturnVisitPlan, SchedulePlan
from tests.factory import command, open_case
from tests.security.test_attacks import SAM, SYSTEM, a_case, cred, registry_file, secured  # noqa: F401
from workflows.contract import WORKFLOW_TYPE
from workflows.return_visits import RETURN_VISITS_TYPE, return_visits_id

BOB = Actor(id="bob", role=Role.agent)


@workflow.defn(name="Rogue", sandboxed=False)
class Rogue:
    """The attacker's own workflow, on its own task queue, calling casework's activities by name."""

    @workflow.run
    async def run(self, target_queue: str, activity: str, arg: dict):
        return await workflow.execute_activity(activity, arg, task_queue=target_queue,
                                               start_to_close_timeout=timedelta(seconds=20))


async def rogue(secured, activity: str, arg: dict):
    queue = f"evil-{uuid.uuid4()}"
    async with Worker(secured.temporal, task_queue=queue, workflows=[Rogue]):
        return await secured.temporal.execute_workflow(Rogue.run, args=[secured.task_queue, activity, arg],
                                                       id=f"rogue-{uuid.uuid4()}", task_queue=queue)


@pytest.mark.parametrize("attack", ["expire_early", "breach_early", "read_history"])
async def test_the_store_step_cannot_be_called_from_outside(secured, attack):
    case = await a_case(secured, f"cust-{attack}")
    console = secured.as_(cred("console"))
    await console.send(case, command("add_note", actor=BOB, text="door code 4711"))
    state = await console.send(case, command("propose_solution", actor=BOB, summary="fixed"))
    state = await console.send(case, command("start_follow_up", actor=BOB, follow_up_hours=48))
    before = [e.model_dump() for e in secured.store.history(case)]
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    arg = {"expire_early": {"case_id": case, "after": state.version, "origin": "engine", "now": later,
                            "command": {"kind": "expire_follow_up", "command_id": f"timer:expire_follow_up@{state.version}",
                                        "actor": {"id": "casework", "role": "system"}}},
           "breach_early": {"case_id": case, "after": state.version, "origin": "engine", "now": later,
                            "command": {"kind": "check_deadlines", "command_id": f"timer:check_deadlines@{state.version}",
                                        "actor": {"id": "casework", "role": "system"}}},
           "read_history": {"case_id": case, "after": 0, "now": datetime.now(UTC).isoformat()}}[attack]
    with pytest.raises(WorkflowFailureError) as err:
        await rogue(secured, "execute_command", arg)
    assert "only as a local activity" in str(err.value.cause.cause)
    with pytest.raises(WorkflowFailureError):
        await rogue(secured, "read_case", {"case_id": case})
    assert [e.model_dump() for e in secured.store.history(case)] == before


async def test_no_case_is_opened_under_the_engine_s_authority_without_a_plan_it_granted(secured):
    plan = ReturnVisitPlan(customer={"id": "cust-victim-9", "name": "Forged by rogue", "tier": "A"},
                           first_due=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(WorkflowFailureError) as err:
        await rogue(secured, "open_return_visit", {"plan": plan.model_dump(mode="json"), "visit": 0, "grant": "0" * 64,
                                                    "command_id": str(uuid.uuid4()), "now": datetime.now(UTC).isoformat()})
    assert "no grant" in str(err.value.cause.cause)
    case_id = case_id_for(SourceRef(system="return-visits", external_id="cust-victim-9:0"))
    assert secured.store.history(case_id) == []


async def test_a_forged_plan_start_opens_nothing_and_a_signed_schedule_runs_the_signed_plan(secured):
    customer = f"ka-{uuid.uuid4().hex[:6]}"
    forged = ReturnVisitPlan(customer={"id": customer, "name": "Forged Name", "tier": "key_account"},
                             first_due=datetime.now(UTC) - timedelta(days=1), team="attacker-team")
    await secured.temporal.start_workflow(RETURN_VISITS_TYPE, {"plan": forged.model_dump(mode="json"), "authorized": True},
                                          id=return_visits_id(customer), task_queue=secured.task_queue)
    await asyncio.sleep(2)
    visit0 = case_id_for(SourceRef(system="return-visits", external_id=f"{customer}:0"))
    assert secured.store.history(visit0) == []  # it claimed `authorized` but holds no grant
    real = ReturnVisitPlan(customer={"id": customer, "name": "Big Co", "tier": "key_account"},
                           first_due=datetime.now(UTC) + timedelta(days=90))
    status = await secured.as_(cred("console")).schedule_return_visits(SchedulePlan(actor=SAM, plan=real))
    assert status.plan == real  # the signed plan runs, not the squatter's


async def test_a_forged_continued_run_cannot_take_a_case_id(secured):
    template = (await secured.as_(None).state(await a_case(secured, "cust-any"))).model_dump(mode="json")
    source = SourceRef(system="crm", external_id=f"TICKET-{uuid.uuid4().hex[:6]}")
    case_id = case_id_for(source)
    forged = {**template, "case_id": case_id, "assignee": "mallory",
              "customer": {**template["customer"], "id": "cust-real", "name": "Attacker's text"}}
    handle = await secured.temporal.start_workflow(WORKFLOW_TYPE, {"state": forged}, id=workflow_id_for(case_id),
                                                   task_queue=secured.task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    assert "which the store does not hold" in str(err.value.cause)
    got = await secured.as_(cred("crm")).open_case(open_case(
        actor=SYSTEM, source=source.model_dump(), customer={"id": "cust-real", "name": "Real Name", "tier": "B"}))
    assert (got.customer.name, got.assignee) == ("Real Name", None)
    assert secured.store.history(case_id)[0].customer.name == "Real Name"


async def test_a_caller_cannot_present_the_engine_s_own_actor(secured):
    case = await a_case(secured, "cust-e")
    engine_actor = Actor(id="casework", role=Role.system)
    before = len(secured.store.history(case))
    with pytest.raises(CommandRefused) as err:
        await secured.as_(cred("crm")).send(case, command("close", actor=engine_actor, reason="duplicate"))
    assert err.value.code == "reserved_actor"
    assert len(secured.store.history(case)) == before
