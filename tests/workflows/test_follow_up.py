"""Follow-up inside the case: callbacks and their retries, surveys, rectification, agreed reply times,
appointments. Offline time skipping on the real dev server."""

from __future__ import annotations

import uuid
from casework.config import sqlite_env
from datetime import timedelta

import pytest

from casework.client import CommandRefused
from domain.model import ClosureReason, Stage
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.factory import CUSTOMER, SUPERVISOR, command, open_case
from tests.workflows.test_sla import SlaEngine, skipping_env  # noqa: F401 - the module's env fixture

GOOD = {"scale": "1-5", "scores": {"response_speed": 5, "problem_solving": 4, "attitude": 5}}
BAD = {"scale": "0-100", "scores": {"response_speed": 30, "problem_solving": 40, "attitude": 50}}


@pytest.fixture
def engine(skipping_env, tmp_path):  # noqa: F811
    reporting = sqlite_env(tmp_path / "reporting.db")
    return SlaEngine(skipping_env, sqlite_store(tmp_path / "events.db"), f"fu-{uuid.uuid4()}", reporting=reporting)


async def solved(engine, **case) -> str:
    cid = (await engine.cases.open_case(open_case(**case))).case_id
    await engine.cases.send(cid, command("respond", message="on it"))
    await engine.cases.send(cid, command("propose_solution", summary="fixed"))
    await engine.cases.send(cid, command("start_follow_up"))
    return cid


async def test_a_confirmed_solution_with_a_survey_closes_resolved(engine):
    async with engine.worker():
        cid = await solved(engine)
        final = await engine.cases.send(cid, command("confirm_solution", CUSTOMER, survey=GOOD))
    assert (final.stage, final.closure_reason) == (Stage.closed, ClosureReason.resolved)
    [survey] = final.surveys
    assert survey.scores == {"response_speed": 100.0, "problem_solving": 75.0, "attitude": 100.0}
    assert survey.overall == 91.7 and survey.original["problem_solving"] == 4 and survey.scale == "1-5"


async def test_not_solved_reopens_and_the_reopen_count_grows(engine):
    async with engine.worker():
        cid = await solved(engine)
        first = await engine.cases.send(cid, command("reject_solution", CUSTOMER, reason="still broken"))
        await engine.cases.send(cid, command("propose_solution", summary="new part"))
        await engine.cases.send(cid, command("start_follow_up"))
        second = await engine.cases.send(cid, command("reject_solution", CUSTOMER, reason="again"))
    assert (first.stage, first.reopen_count, second.reopen_count) == (Stage.response, 1, 2)
    assert second.callback_due is None


async def test_no_answer_is_called_back_per_policy_then_closes_as_no_response(engine):
    async with engine.worker():
        cid = await solved(engine)
        for _ in range(4):
            await engine.forward(cid, timedelta(hours=24, minutes=1))
        final = await engine.cases.wait_closed(cid)
    attempts = engine.events(cid, "CallbackAttempted")
    assert [(a.attempt, a.channel) for a in attempts] == [
        (1, "survey_request"), (2, "agent_callback"), (3, "agent_callback")]
    assert attempts[1].survey_skipped.startswith("one survey per solution")
    gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:])]
    assert all(timedelta(hours=24) <= g < timedelta(hours=24, minutes=5) for g in gaps)
    assert (final.closure_reason, final.callback_attempts) == (ClosureReason.no_response, 3)


async def test_a_bad_survey_forces_rectification_by_the_team_lead_before_close(engine):
    async with engine.worker():
        cid = await solved(engine)
        answered = await engine.cases.send(cid, command("confirm_solution", CUSTOMER, survey=BAD))
        assert answered.stage is Stage.follow_up and answered.rectification_pending
        assert (answered.escalation_level, answered.assignee) == (1, "lead-li")
        with pytest.raises(CommandRefused) as refused:
            await engine.cases.send(cid, command("close", reason="cancelled"))
        assert refused.value.code == "rectification_pending"
        final = await engine.cases.send(cid, command("record_rectification", SUPERVISOR,
                                                     note="re-trained the engineer, apologised"))
    assert (final.stage, final.closure_reason, final.rectification_notes) == (Stage.closed, ClosureReason.resolved, 1)
    assert [e.type for e in engine.events(cid, "SurveyRecorded", "RectificationRequired", "CaseEscalated",
                                          "RectificationRecorded", "CaseClosed")] == [
        "SurveyRecorded", "RectificationRequired", "CaseEscalated", "RectificationRecorded", "CaseClosed"]


async def test_a_safety_incident_in_a_survey_goes_to_emergency_response(engine):
    async with engine.worker():
        cid = await solved(engine)
        state = await engine.cases.send(cid, command("reject_solution", CUSTOMER, reason="it sparked",
                                                     survey={**GOOD, "safety_incident": True}))
    assert (state.escalation_level, state.assignee) == (3, "emergency-desk")
    assert engine.events(cid, "CaseEscalated")[-1].cause == "safety_incident"


async def test_bad_survey_input_is_refused_and_changes_nothing(engine):
    async with engine.worker():
        cid = await solved(engine)
        with pytest.raises(CommandRefused, match="unknown survey dimension"):
            await engine.cases.send(cid, command("confirm_solution", CUSTOMER,
                                                 survey={"scores": {"tastiness": 90}}))
        with pytest.raises(CommandRefused, match="outside the 1-5 scale"):
            await engine.cases.send(cid, command("confirm_solution", CUSTOMER,
                                                 survey={"scale": "1-5", "scores": {"attitude": 9}}))
        state = await engine.cases.state(cid)
    assert state.stage is Stage.follow_up and not state.surveys


async def test_a_missed_agreed_reply_time_escalates(engine):
    async with engine.worker():
        cid = (await engine.cases.open_case(open_case(category="complaint"))).case_id
        await engine.cases.send(cid, command("respond", message="we will find out"))
        now = (await engine.cases.state(cid)).first_response_at
        await engine.cases.send(cid, command("agree_reply_time", reply_by=now + timedelta(hours=2),
                                             note="customer agreed to a call by 2 pm"))
        await engine.forward(cid, timedelta(hours=2, minutes=5))
        state = await engine.cases.state(cid)
    breach = [e for e in engine.events(cid, "SlaClockBreached") if e.clock == "agreed_reply"]
    assert len(breach) == 1 and state.clocks["agreed_reply"].breached_at is not None
    assert [e.clock for e in engine.events(cid, "CaseEscalated")] == ["agreed_reply"]


async def test_agreed_reply_time_is_for_complaints_and_kept_by_a_response(engine):
    async with engine.worker():
        fault = (await engine.cases.open_case(open_case(category="fault"))).case_id
        with pytest.raises(CommandRefused) as refused:
            await engine.cases.send(fault, command("agree_reply_time", reply_by="2099-01-01T00:00:00Z"))
        assert refused.value.code == "not_a_complaint"
        cid = (await engine.cases.open_case(open_case(category="complaint"))).case_id
        await engine.cases.send(cid, command("agree_reply_time", reply_by="2099-01-01T00:00:00Z"))
        state = await engine.cases.send(cid, command("respond", message="here is our answer"))
    assert state.clocks["agreed_reply"].state == "met"


async def test_survey_requests_are_throttled_per_customer(engine):
    async with engine.worker():
        first = await solved(engine)
        await engine.forward(first, timedelta(hours=24, minutes=1))
        await engine.cases.send(first, command("confirm_solution", CUSTOMER, survey=GOOD))
        # The throttle reads the reporting tables, as the worker's projection keeps them.
        ReportProjection(engine.store, open_view(engine.reporting)).catch_up()
        again = await solved(engine)  # the same customer, a second case soon after
        other = await solved(engine, customer={"id": "cust-2", "name": "Other", "tier": "B"})
        await engine.forward(again, timedelta(hours=24, minutes=1))
        await engine.forward(other, timedelta(hours=24, minutes=1))
    [throttled] = engine.events(again, "CallbackAttempted")
    [asked] = engine.events(other, "CallbackAttempted")
    assert throttled.channel == "agent_callback" and throttled.survey_skipped.startswith("throttled")
    assert asked.channel == "survey_request"


async def test_an_on_site_appointment_is_booked_confirmed_and_reported(engine):
    async with engine.worker():
        cid = (await engine.cases.open_case(open_case(category="warranty", channel="on_site"))).case_id
        await engine.cases.send(cid, command("respond", message="an engineer will come"))
        with pytest.raises(CommandRefused):
            await engine.cases.send(cid, command("record_service_report", work_done="x"))
        await engine.cases.send(cid, command("book_appointment", at="2026-12-01T09:00:00+08:00",
                                             place="Plant 3, gate B", need="replace pump seal"))
        confirmed = await engine.cases.send(cid, command("confirm_appointment", CUSTOMER))
        reported = await engine.cases.send(cid, command("record_service_report", work_done="seal replaced",
                                                        parts_used=["seal kit SK-12"]))
    assert confirmed.appointment.confirmed and confirmed.appointment.place == "Plant 3, gate B"
    assert reported.service_reports == 1
    [report] = engine.events(cid, "ServiceReportRecorded")
    assert report.parts_used == ["seal kit SK-12"]


async def test_a_follow_up_period_shorter_than_the_policy_minimum_is_refused_and_a_real_one_runs_out(engine):
    async with engine.worker():
        cid = (await engine.cases.open_case(open_case())).case_id
        await engine.cases.send(cid, command("propose_solution", summary="Firmware update"))
        for hours in (1e-9, 1 / 3600, 0.5):  # the shipped minimum is one hour
            with pytest.raises(CommandRefused) as err:
                await engine.cases.send(cid, command("start_follow_up", follow_up_hours=hours))
            assert err.value.code == "follow_up_too_short"
        assert (await engine.cases.state(cid)).stage is Stage.solution  # nothing happened
        await engine.cases.send(cid, command("start_follow_up", follow_up_hours=2))
        await engine.forward(cid, timedelta(hours=1, minutes=59))
        assert (await engine.cases.state(cid)).stage is Stage.follow_up
        await engine.forward(cid, timedelta(minutes=2))
        final = await engine.cases.state(cid)
    assert (final.stage, final.closure_reason) == (Stage.closed, ClosureReason.resolved_unconfirmed)
    assert not final.customer_confirmed
    closed = [e for e in engine.store.history(cid) if e.type == "CaseClosed"]
    assert len(closed) == 1 and closed[0].actor.id == "casework"
    started = [e for e in engine.store.history(cid) if e.type == "FollowUpStarted"][0]
    assert closed[0].at - started.at == timedelta(hours=2)
