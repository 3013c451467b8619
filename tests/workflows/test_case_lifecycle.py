"""A case driven through the real Temporal dev server, checked in its state and in the event store."""

from __future__ import annotations


from domain.model import ClosureReason, Stage
from tests.factory import CUSTOMER, command, open_case
from tests.workflows.helpers import stored_types


async def test_happy_path_closes_resolved_and_stores_each_step_in_order(engine):
    opened = await engine.cases.open_case(open_case())
    cid = opened.case_id
    assert opened.stage is Stage.intake

    await engine.cases.send(cid, command("respond", message="We are on it"))
    await engine.cases.send(cid, command("propose_solution", summary="Restart the spooler"))
    await engine.cases.send(cid, command("start_follow_up", follow_up_hours=24))
    final = await engine.cases.send(cid, command("confirm_solution", CUSTOMER, comment="works"))

    assert final.stage is Stage.closed
    assert final.closure_reason is ClosureReason.resolved
    assert final.customer_confirmed
    assert final.first_response_at is not None and final.solved_at is not None
    assert stored_types(engine.store, cid) == [
        "CaseOpened", "ResponseSent", "SolutionProposed", "FollowUpStarted", "SolutionConfirmed",
        "CaseClosed"]
    stored = engine.store.state(cid)
    assert stored == await engine.cases.state(cid)
    # The answer is the stored case without the pinned policy's text (named by its version).
    assert stored.sla.policy is not None and final.sla.policy is None
    assert final.sla.policy_version == stored.sla.policy_version
    assert final.model_dump(exclude={"sla"}) == stored.model_dump(exclude={"sla"})
    timeline = await engine.cases.timeline(cid)
    assert [t.type for t in timeline] == stored_types(engine.store, cid, sla=True)


async def test_two_clarification_rounds_return_to_the_interrupted_stage(engine):
    cid = (await engine.cases.open_case(open_case())).case_id

    asked = await engine.cases.send(cid, command("request_clarification", question="Which model?"))
    assert asked.stage is Stage.needs_clarification
    back = await engine.cases.send(cid, command("record_customer_reply", CUSTOMER, message="HP 4250"))
    assert back.stage is Stage.intake
    await engine.cases.send(cid, command("respond", message="Thanks, checking"))
    await engine.cases.send(cid, command("request_clarification", question="Serial number?"))
    back = await engine.cases.send(cid, command("record_customer_reply", CUSTOMER, message="SN123"))

    assert back.stage is Stage.response
    assert back.clarification_rounds == 2
    assert stored_types(engine.store, cid) == [
        "CaseOpened", "ClarificationRequested", "CustomerReplied", "ResponseSent",
        "ClarificationRequested", "CustomerReplied"]


async def test_rejected_solution_reopens_the_case_to_response(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    await engine.cases.send(cid, command("propose_solution", summary="Replace toner"))
    await engine.cases.send(cid, command("start_follow_up"))

    reopened = await engine.cases.send(cid, command("reject_solution", CUSTOMER, reason="Still offline"))
    assert reopened.stage is Stage.response
    assert reopened.reopen_count == 1
    assert reopened.follow_up_due is None

    await engine.cases.send(cid, command("propose_solution", summary="Replace network card"))
    await engine.cases.send(cid, command("revise_solution", summary="Replace card and update driver"))
    await engine.cases.send(cid, command("start_follow_up"))
    final = await engine.cases.send(cid, command("confirm_solution", CUSTOMER))
    assert (final.stage, final.reopen_count, final.solution_revisions) == (Stage.closed, 1, 1)
    assert final.solution == "Replace card and update driver"


async def test_retriage_reassign_and_notes_change_the_case_without_moving_its_stage(engine):
    cid = (await engine.cases.open_case(open_case())).case_id
    await engine.cases.send(cid, command("respond", message="Received"))
    await engine.cases.send(cid, command("retriage", priority="urgent", category="complaint",
                                         reason="Customer's production line stopped"))
    await engine.cases.send(cid, command("reassign", assignee="agent-bob", team="field-service"))
    state = await engine.cases.send(cid, command("add_note", text="Called the site manager"))

    assert (state.stage, state.priority.value, state.category.value) == (Stage.response, "urgent", "complaint")
    assert (state.assignee, state.team, state.notes_count) == ("agent-bob", "field-service", 1)


async def test_staff_may_close_as_duplicate_or_for_no_response_while_waiting(engine):
    dup = (await engine.cases.open_case(open_case())).case_id
    closed = await engine.cases.send(dup, command("close", reason="duplicate", note="same as #42"))
    assert closed.closure_reason is ClosureReason.duplicate

    silent = (await engine.cases.open_case(open_case())).case_id
    await engine.cases.send(silent, command("request_clarification", question="Which site?"))
    closed = await engine.cases.send(silent, command("close", reason="no_response"))
    assert (closed.stage, closed.closure_reason) == (Stage.closed, ClosureReason.no_response)
