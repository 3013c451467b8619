"""SLA clocks and escalation on the real dev server, with Temporal's offline time skipping."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from casework.client import CaseworkClient, CommandRefused
from casework.config import temporal_binary
from domain.calendar import add_business_time
from domain.ids import workflow_id_for
from domain.model import Actor, Role
from tests.conftest import sqlite_store
from tests.factory import CUSTOMER, SUPERVISOR, command, open_case
from tests.workflows.helpers import history_length
from worker import build_worker
from workflows.contract import SEARCH_ATTRIBUTES

POLICY = str(Path(__file__).with_name("sla_policy.toml"))


@pytest.fixture(scope="module")
async def skipping_env():
    env = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=False),  # virtual time moves only when a test says so
        dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
        search_attributes=SEARCH_ATTRIBUTES,
        dev_server_extra_args=["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"])
    yield env
    await env.shutdown()


class SlaEngine:
    def __init__(self, env, store, task_queue, reporting=None, policy=POLICY):
        self.env, self.store, self.task_queue = env, store, task_queue
        self.reporting, self.policy = reporting, policy
        self.cases = CaseworkClient(env.client, task_queue)

    def worker(self):
        return build_worker(self.env.client, self.store, self.task_queue, policy_path=self.policy,
                            reporting=self.reporting)

    async def forward(self, case_id: str, duration: timedelta) -> None:
        await self.env.fast_forward(self.env.client.get_workflow_handle(workflow_id_for(case_id)), duration)
        await asyncio.sleep(0.5)  # let the woken workflow store what fell due

    def events(self, case_id: str, *types: str):
        return [e for e in self.store.history(case_id) if not types or e.type in types]


@pytest.fixture
def sla(skipping_env, tmp_path):
    return SlaEngine(skipping_env, sqlite_store(tmp_path / "events.db"), f"sla-{uuid.uuid4()}")


async def test_a_breach_escalates_exactly_once_after_its_warnings_in_order(sla):
    async with sla.worker():
        cid = (await sla.cases.open_case(open_case())).case_id
        await sla.forward(cid, timedelta(minutes=70))
        await sla.forward(cid, timedelta(minutes=20))
        state = await sla.cases.state(cid)
        closed = await sla.cases.send(cid, command("close", reason="cancelled"))

    first = [e for e in sla.events(cid, "SlaClockWarned", "SlaClockBreached") if e.clock == "first_response"]
    assert [(e.type, getattr(e, "share", None)) for e in first] == [
        ("SlaClockWarned", 0.5), ("SlaClockWarned", 0.75), ("SlaClockWarned", 0.9), ("SlaClockBreached", None)]
    opened = state.opened_at
    assert [e.at - opened for e in first] == [timedelta(minutes=30), timedelta(minutes=45),
                                              timedelta(minutes=54), timedelta(hours=1)]
    escalations = sla.events(cid, "CaseEscalated")
    assert [(e.level, e.owner, e.clock) for e in escalations] == [(1, "lead-li", "first_response")]
    assert (state.escalation_level, state.assignee, state.sla_breached) == (1, "lead-li", ["first_response"])
    # A breach stays on the case after it closes (the osTicket bug in the anchors).
    assert closed.sla_breached == ["first_response"]
    assert {e.clock for e in sla.events(cid, "SlaClockCancelled")} == {"first_response", "resolution"}


async def test_a_warning_escalates_where_the_policy_says(sla, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(Path(POLICY).read_text().replace("warn_at = [0.5, 0.75, 0.9]",
                                                       "warn_at = [0.5, 0.75, 0.9]\nescalate_on_warning = [0.75]"))
    async with build_worker(sla.env.client, sla.store, sla.task_queue, policy_path=str(policy)):
        cid = (await sla.cases.open_case(open_case())).case_id
        await sla.forward(cid, timedelta(minutes=50))
        warned = await sla.cases.state(cid)
        await sla.forward(cid, timedelta(minutes=15))
        breached = await sla.cases.state(cid)

    assert (warned.escalation_level, warned.assignee) == (1, "lead-li")
    assert (breached.escalation_level, breached.assignee) == (2, "manager-ma")
    assert [(e.cause, e.level) for e in sla.events(cid, "CaseEscalated")] == [("warning", 1), ("breach", 2)]


async def test_waiting_on_the_customer_pauses_resolution_and_a_reply_resumes_it(sla):
    async with sla.worker():
        cid = (await sla.cases.open_case(open_case())).case_id
        await sla.cases.send(cid, command("respond", message="hello"))
        await sla.forward(cid, timedelta(hours=1))  # 1 h of the 4 h resolution target used
        await sla.cases.send(cid, command("request_clarification", question="Which unit?"))
        await sla.forward(cid, timedelta(hours=30))  # a long wait on the customer
        waiting = await sla.cases.state(cid)
        virtual_now = await sla.env.get_current_time(sla.env.client.get_workflow_handle(workflow_id_for(cid)))
        views = {v.name: v for v in await sla.cases.clocks(cid, virtual_now)}
        replied = await sla.cases.send(cid, command("record_customer_reply", CUSTOMER, message="Unit 7"))

    resolution = replied.clocks["resolution"]
    assert waiting.clocks["resolution"].state == "paused"
    shown = views["resolution"]
    assert (shown.state, shown.due, shown.target) == ("paused", None, timedelta(hours=4))
    assert timedelta(hours=1) <= shown.elapsed < timedelta(hours=1, seconds=10)
    assert shown.paused >= timedelta(hours=30)
    assert views["first_response"].state == "met" and views["first_response"].met_at is not None
    assert not [e for e in sla.events(cid, "SlaClockBreached") if e.clock == "resolution"]
    assert resolution.state == "running"
    assert resolution.paused_total >= timedelta(hours=30)
    # 3 h of the target remain after the reply, not "breached at once" (the Zammad bug).
    last_reply = sla.events(cid, "CustomerReplied")[-1].at
    # (Virtual time also runs on with the test's own seconds between fast-forwards.)
    assert abs(resolution.due - (last_reply + timedelta(hours=3))) < timedelta(seconds=10)
    assert replied.clocks["next_response"].state == "running"


async def test_a_reopened_case_gets_back_only_the_time_it_had_left(sla):
    async with sla.worker():
        cid = (await sla.cases.open_case(open_case())).case_id
        await sla.forward(cid, timedelta(minutes=90))
        await sla.cases.send(cid, command("propose_solution", summary="Reset"))
        await sla.forward(cid, timedelta(hours=10))
        reopened = await sla.cases.send(cid, command("reject_solution", CUSTOMER, reason="no"))

    resolution = reopened.clocks["resolution"]
    rejected_at = sla.events(cid, "SolutionRejected")[-1].at
    assert resolution.state == "running"
    assert abs(resolution.due - (rejected_at + timedelta(minutes=150))) < timedelta(seconds=10)
    assert not [e for e in sla.events(cid, "SlaClockBreached") if e.clock == "resolution"]


async def test_a_worker_restart_between_warning_and_breach_loses_and_doubles_nothing(sla):
    async with sla.worker():
        cid = (await sla.cases.open_case(open_case())).case_id
        await sla.forward(cid, timedelta(minutes=40))
    assert [e.share for e in sla.events(cid, "SlaClockWarned")] == [0.5]

    async with sla.worker():  # a new worker process, same store file
        await sla.forward(cid, timedelta(minutes=30))
        await sla.forward(cid, timedelta(minutes=5))
        state = await sla.cases.state(cid)

    first = [e for e in sla.events(cid, "SlaClockWarned", "SlaClockBreached") if e.clock == "first_response"]
    assert [getattr(e, "share", "breach") for e in first] == [0.5, 0.75, 0.9, "breach"]
    assert len(sla.events(cid, "CaseEscalated")) == 1 and state.escalation_level == 1


async def test_only_supervisors_on_the_roster_escalate_acknowledge_and_de_escalate(sla):
    async with sla.worker():
        cid = (await sla.cases.open_case(open_case())).case_id
        before = await history_length(sla.env.client, cid)
        with pytest.raises(CommandRefused) as refused:
            await sla.cases.send(cid, command("escalate", reason="angry customer"))  # from an agent
        assert refused.value.code == "role_not_allowed" and "'agent'" in refused.value.message
        impostor = Actor(id="sup-unknown", role=Role.supervisor)
        with pytest.raises(CommandRefused) as refused:
            await sla.cases.send(cid, command("escalate", impostor, reason="x"))
        assert refused.value.code == "not_on_roster"
        assert await history_length(sla.env.client, cid) == before
        assert not sla.events(cid, "CaseEscalated")

        up = await sla.cases.send(cid, command("escalate", SUPERVISOR, reason="angry customer"))
        assert (up.escalation_level, up.assignee) == (1, "lead-li")
        acked = await sla.cases.send(cid, command("acknowledge", SUPERVISOR, note="calling them"))
        assert acked.escalation_acknowledged
        with pytest.raises(CommandRefused, match="already acknowledged"):
            await sla.cases.send(cid, command("acknowledge", SUPERVISOR))
        down = await sla.cases.send(cid, command("de_escalate", SUPERVISOR, reason="calmed down"))
        assert down.escalation_level == 0
    assert [e.type for e in sla.events(cid, "CaseEscalated", "EscalationAcknowledged", "CaseDeEscalated")] == [
        "CaseEscalated", "EscalationAcknowledged", "CaseDeEscalated"]


async def test_urgent_safety_and_key_account_cases_escalate_where_the_seeds_say(sla):
    async with sla.worker():
        safety = await sla.cases.open_case(open_case(category="safety_incident"))
        assert (safety.escalation_level, safety.assignee) == (3, "emergency-desk")

        urgent = (await sla.cases.open_case(open_case(priority="urgent"))).case_id
        key = (await sla.cases.open_case(open_case(customer={
            "id": "ka-1", "name": "Big Co", "tier": "key_account", "dedicated_owner": "owner-olga"}))).case_id
        await sla.forward(urgent, timedelta(minutes=65))
        await sla.forward(key, timedelta(minutes=65))
        urgent_state, key_state = await sla.cases.state(urgent), await sla.cases.state(key)

    assert (urgent_state.escalation_level, urgent_state.assignee) == (3, "emergency-desk")
    assert (key_state.escalation_level_name, key_state.assignee) == ("key_account_owner", "owner-olga")


async def test_supervisors_find_breached_cases_through_search_attributes(sla):
    async with sla.worker():
        cid = (await sla.cases.open_case(open_case())).case_id
        await sla.forward(cid, timedelta(minutes=65))
        query = f"CaseSlaBreached = true AND CaseEscalationLevel = 1 AND WorkflowId = '{workflow_id_for(cid)}'"
        for _ in range(50):  # visibility is eventually consistent
            found = [w.id async for w in sla.env.client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.2)
    assert found == [workflow_id_for(cid)]


async def test_the_deadline_counts_business_hours_of_the_pinned_calendar(temporal_env, tmp_path):
    office = tmp_path / "office.toml"
    office.write_text(Path(POLICY).read_text().replace(
        'timezone = "UTC"\nalways_open = true',
        'timezone = "Asia/Shanghai"\nhours = { mon = ["09:00-18:00"], tue = ["09:00-18:00"] }\n'
        'holidays = ["2026-11-24"]'))
    store, queue = sqlite_store(tmp_path / "events.db"), f"sla-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, queue, policy_path=str(office)):
        state = await CaseworkClient(temporal_env.client, queue).open_case(open_case())
    terms = state.sla
    assert terms.calendar.timezone == "Asia/Shanghai" and terms.policy_version == "test-1"
    due = state.clocks["first_response"].due
    assert due == add_business_time(terms.calendar, state.opened_at, timedelta(hours=1))
    local = due.astimezone(ZoneInfo("Asia/Shanghai"))
    assert local.weekday() in (0, 1) and local.date() != date(2026, 11, 24)  # open days, not the holiday


async def test_a_supervisor_reapplies_the_current_policy_and_clocks_keep_their_elapsed_time(sla, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(Path(POLICY).read_text())
    async with build_worker(sla.env.client, sla.store, sla.task_queue, policy_path=str(policy)):
        cid = (await sla.cases.open_case(open_case())).case_id
        await sla.forward(cid, timedelta(hours=1, minutes=30))
        # The policy file changes: the running case keeps its pinned terms...
        policy.write_text(Path(POLICY).read_text().replace('version = "test-1"', 'version = "test-2"')
                          .replace("resolution_hours = 4", "resolution_hours = 8"))
        await sla.cases.send(cid, command("add_note", text="still pinned"))
        assert (await sla.cases.state(cid)).sla.policy_version == "test-1"
        with pytest.raises(CommandRefused):
            await sla.cases.send(cid, command("reapply_policy", reason="new contract"))  # an agent
        # ...until a supervisor re-applies it.
        state = await sla.cases.send(cid, command("reapply_policy", SUPERVISOR, reason="new contract"))

    resolution = state.clocks["resolution"]
    retargeted = sla.events(cid, "SlaClockRetargeted")[-1]
    assert state.sla.policy_version == "test-2" and resolution.target == timedelta(hours=8)
    assert abs(retargeted.elapsed - timedelta(minutes=90)) < timedelta(seconds=10)
    assert resolution.due == retargeted.at + timedelta(hours=8) - retargeted.elapsed
