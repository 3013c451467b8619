"""One alarm per wake-up (workflows/service_case.py, `_wait_with_alarm`): a deadline that moves later
leaves the running timer alone, and when that rings before anything is due the case sleeps on to the
deadline as it is then; a deadline that moves earlier cancels it. Either way a warning lands on its due
instant. Offline time skipping on the real dev server, with the tests' policy (targets of 1/1/4 h,
warnings at 0.5, 0.75, 0.9) and urgent cases at 0.5 h to first response."""

from __future__ import annotations

import collections
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from domain.ids import workflow_id_for
from tests.conftest import sqlite_store
from tests.factory import command, open_case
from tests.workflows.test_sla import POLICY, SlaEngine, skipping_env  # noqa: F401 - the module's env fixture

URGENT = """
[[targets]]
priority = "urgent"
first_response_hours = 0.5
next_response_hours = 0.5
resolution_hours = 2
"""


@pytest.fixture
def sla(skipping_env, tmp_path):  # noqa: F811
    policy = tmp_path / "policy.toml"
    policy.write_text(Path(POLICY).read_text() + URGENT)
    return SlaEngine(skipping_env, sqlite_store(tmp_path / "events.db"), f"alarm-{uuid.uuid4()}", policy=str(policy))


async def timer_events(sla: SlaEngine, cid: str) -> collections.Counter:
    history = await sla.env.client.get_workflow_handle(workflow_id_for(cid)).fetch_history()
    return collections.Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events
                               if "TIMER" in EventType.Name(e.event_type))


async def test_a_later_deadline_keeps_the_running_timer_and_the_next_warning_lands_on_time(sla):
    async with sla.worker():
        opened = await sla.cases.open_case(open_case())
        cid = opened.case_id
        # The first response stops its clock (its warning was due at 30 min): the next deadline is the
        # resolution's first warning, at 2 h. The timer for 30 min stays.
        await sla.cases.send(cid, command("respond", message="on it"))
        await sla.forward(cid, timedelta(minutes=40))  # it rings with nothing due
        assert sla.events(cid, "SlaClockWarned") == []
        await sla.forward(cid, timedelta(minutes=85))
        timers = await timer_events(sla, cid)

    [warned] = sla.events(cid, "SlaClockWarned")
    assert (warned.clock, warned.share) == ("resolution", 0.5)
    assert warned.at - opened.opened_at == timedelta(hours=2)
    # Started at 30 min, then at 2 h once it rang, then at 3 h (the next warning): none cancelled.
    assert (timers["TIMER_STARTED"], timers["TIMER_FIRED"], timers["TIMER_CANCELED"]) == (3, 2, 0)


async def test_an_earlier_deadline_cancels_the_running_timer_and_its_warning_lands_on_time(sla):
    async with sla.worker():
        opened = await sla.cases.open_case(open_case())
        cid = opened.case_id
        # Urgent: the first response is due at 30 min, its first warning at 15 min (not 30 min).
        await sla.cases.send(cid, command("retriage", priority="urgent", reason="it is down"))
        await sla.forward(cid, timedelta(minutes=20))
        timers = await timer_events(sla, cid)

    [warned] = sla.events(cid, "SlaClockWarned")
    assert (warned.clock, warned.share) == ("first_response", 0.5)
    assert warned.at - opened.opened_at == timedelta(minutes=15)
    # Started at 30 min, cancelled for 15 min, then started for the 0.75 warning at 22.5 min.
    assert (timers["TIMER_STARTED"], timers["TIMER_FIRED"], timers["TIMER_CANCELED"]) == (3, 1, 1)
