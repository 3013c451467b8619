"""The whole engine with its event store on a real PostgreSQL server."""

from __future__ import annotations

import pytest

from casework.client import CommandRefused
from domain.model import ClosureReason
from tests.factory import CUSTOMER, command, open_case
from tests.workflows.helpers import stored_types


@pytest.fixture
def store(postgres_store):
    return postgres_store


async def test_case_driven_to_close_with_events_in_postgres(engine):
    assert type(engine.store.recorder).__module__ == "eventsourcing.postgres"
    cid = (await engine.cases.open_case(open_case())).case_id
    await engine.cases.send(cid, command("request_clarification", question="Which site?"))
    await engine.cases.send(cid, command("record_customer_reply", CUSTOMER, message="Plant 2"))
    with pytest.raises(CommandRefused):
        await engine.cases.send(cid, command("start_follow_up"))
    await engine.cases.send(cid, command("propose_solution", summary="Swap the relay"))
    await engine.cases.send(cid, command("start_follow_up"))
    final = await engine.cases.send(cid, command("confirm_solution", CUSTOMER))

    assert final.closure_reason is ClosureReason.resolved
    assert stored_types(engine.store, cid) == [
        "CaseOpened", "ClarificationRequested", "CustomerReplied", "SolutionProposed", "FollowUpStarted",
        "SolutionConfirmed", "CaseClosed"]
    stored = engine.store.state(cid)
    assert stored == await engine.cases.state(cid)
    # The answer is the stored case without the pinned policy's text (named by its version).
    assert stored.sla.policy is not None and final.sla.policy is None
    assert final.sla.policy_version == stored.sla.policy_version
    assert final.model_dump(exclude={"sla"}) == stored.model_dump(exclude={"sla"})
