"""The lean history's one alarm per wake-up, the deadline moved earlier then
later, and a case closed while the alarm runs. Offline time skipping, the tests' policy (targets
1/1/4 h, warnings at 0.5, 0.75, 0.9) plus urgent cases at 0.5 h to first response."""

from __future__ import annotations

from datetime import timedelta

from tests.factory import command, open_case
from tests.workflows.test_sla import skipping_env  # noqa: F401
from tests.workflows.test_sla_alarm import sla  # noqa: F401
from tests.workflows.test_sla_alarm import timer_events


async def test_earlier_then_later_deadline_warns_once_at_the_later_instant(sla):  # noqa: F811
    async with sla.worker():
        opened = await sla.cases.open_case(open_case())
        cid = opened.case_id
        await sla.cases.send(cid, command("retriage", priority="urgent", reason="it is down"))  # 15 min
        await sla.cases.send(cid, command("retriage", priority="normal", reason="not so bad"))  # 30 min
        await sla.forward(cid, timedelta(minutes=20))  # the 15 min alarm rings with nothing due
        assert sla.events(cid, "SlaClockWarned") == []
        await sla.forward(cid, timedelta(minutes=15))
        warned = sla.events(cid, "SlaClockWarned")
        timers = await timer_events(sla, cid)
    assert [(w.clock, w.share, w.at - opened.opened_at) for w in warned] == [
        ("first_response", 0.5, timedelta(minutes=30))], timers



async def test_a_pause_across_the_alarm_and_a_resume_warn_on_the_resumed_clock(sla):  # noqa: F811
    from tests.factory import CUSTOMER
    async with sla.worker():
        cid = (await sla.cases.open_case(open_case())).case_id
        await sla.cases.send(cid, command("respond", message="hello"))
        await sla.forward(cid, timedelta(minutes=30))
        await sla.cases.send(cid, command("request_clarification", question="Which unit?"))
        await sla.forward(cid, timedelta(hours=2))  # the resolution's 2 h alarm rings while paused
        await sla.cases.send(cid, command("record_customer_reply", CUSTOMER, message="Unit 7"))
        await sla.forward(cid, timedelta(hours=3, minutes=40))
        timers = await timer_events(sla, cid)
    reply = sla.events(cid, "CustomerReplied")[-1].at
    used = sla.events(cid, "ClarificationRequested")[-1].at - sla.events(cid, "CaseOpened")[0].at  # ~30 min
    got = [(w.share, w.at - reply) for w in sla.events(cid, "SlaClockWarned") if w.clock == "resolution"]
    # of the 4 h target, `used` before the pause: each share's instant is that much less after the reply
    want = [(share, timedelta(hours=4) * share - used) for share in (0.5, 0.75, 0.9)]
    assert [s for s, _ in got] == [s for s, _ in want], (got, timers)
    for (_, at), (_, due) in zip(got, want):
        assert timedelta(0) <= at - due < timedelta(seconds=10), (got, timers)
