"""Reopen after close on the real engine: the Temporal dev server, a worker and a SQLite store.

A closed case's run has completed; the client starts a new run of the same workflow id for a
customer's reply within the window, the store decides it, and the case goes on (issue 13)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime

import pytest
from temporalio.client import WorkflowExecutionStatus

from casework.client import CaseworkClient
from casework.policy import DEFAULT_POLICY, PolicyError, load_policy
from domain import events as e
from domain.ids import workflow_id_for
from domain.lifecycle import CommandRefused
from domain.reopen import follow_up_case_id
from tests.factory import CUSTOMER, command, open_case
from tests.workflows.test_exactly_once import store_and_workflow_agree
from worker import build_worker

# A closed case's answer comes in well under a second on the dev server; far above that is a hang.
ANSWER_WITHIN = 30


async def closed_case(cases, at: datetime | None = None) -> str:
    when = {"occurred_at": at} if at else {}
    cid = (await cases.open_case(open_case(**when))).case_id
    for cmd in [command("respond", message="on it", **when), command("propose_solution", summary="fix", **when),
                command("confirm_solution", CUSTOMER, **when)]:
        state = await cases.send(cid, cmd)
    assert state.stage.value == "closed"
    await cases.wait_closed(cid)
    return cid


async def test_a_reply_after_the_close_reopens_the_case_in_a_new_run(engine):
    cid = await closed_case(engine.cases)
    reopened = await engine.cases.send(cid, command("record_customer_reply", CUSTOMER, message="again"))
    assert (reopened.stage.value, reopened.reopen_count, reopened.closed_at) == ("response", 1, None)
    handle = engine.temporal.get_workflow_handle(workflow_id_for(cid))
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    # The case goes on in the new run, its clocks continued: the resolution clock runs again.
    assert (await engine.cases.state(cid)).clocks["resolution"].state == "running"
    for cmd in [command("respond", message="looking"), command("propose_solution", summary="better fix"),
                command("confirm_solution", CUSTOMER)]:
        state = await engine.cases.send(cid, cmd)
    assert (state.stage.value, state.reopen_count) == ("closed", 1)
    runs = [wf async for wf in engine.temporal.list_workflows(f'WorkflowId = "{workflow_id_for(cid)}"')]
    assert len(runs) == 2
    history = engine.store.history(cid)
    assert [x.type for x in history].count("CaseReopened") == 1
    assert [x.type for x in history].count("CaseClosed") == 2


async def two_replies_reopen_once(engine, send_both) -> None:
    """Two customer replies on a closed case, sent by `send_both(case_id, replies)` from two clients:
    both answered, the case reopened once, each reply stored once."""
    cid = await asyncio.wait_for(closed_case(engine.cases), ANSWER_WITHIN)
    replies = [command("record_customer_reply", CUSTOMER, message=f"reply {n}") for n in range(2)]
    # Bounded: a reply left waiting fails the test instead of hanging it (and CI).
    states = await asyncio.wait_for(send_both(cid, replies), ANSWER_WITHIN)
    assert [(s.case_id, s.stage.value, s.reopen_count) for s in states] == [(cid, "response", 1)] * 2
    history = engine.store.history(cid)
    assert sum(isinstance(x, e.CaseReopened) for x in history) == 1
    assert sorted(x.message for x in history if isinstance(x, e.CustomerReplied)) == ["reply 0", "reply 1"]
    await store_and_workflow_agree(engine.cases, engine.store, cid)
    # A retry of a reopening command is answered once: nothing stored twice.
    await asyncio.wait_for(engine.cases.send(cid, replies[0]), ANSWER_WITHIN)
    assert sum(isinstance(x, e.CustomerReplied) for x in engine.store.history(cid)) == 2


async def test_two_replies_at_once_reopen_once(engine):
    other = CaseworkClient(engine.temporal, engine.task_queue, engine.cases.limits)

    async def at_once(cid, replies):
        return await asyncio.gather(engine.cases.send(cid, replies[0]), other.send(cid, replies[1]))

    for _ in range(3):  # the interleaving differs from round to round; each round is a fresh case
        await two_replies_reopen_once(engine, at_once)


class _PausedAfterSeeingTheClose(CaseworkClient):
    """A client that, having found the case's run completed, waits for `go` before going on."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.saw_close, self.go = asyncio.Event(), asyncio.Event()

    async def _stored_digest(self, workflow_id: str, command_id: str) -> str | None:
        found = await super()._stored_digest(workflow_id, command_id)
        self.saw_close.set()
        await self.go.wait()
        return found


async def test_a_reply_that_saw_the_close_lands_on_the_run_another_reply_started(engine):
    # The interleaving that hung two quick replies (one time in two after the as-of tests): one
    # sender finds the case's run completed; the other's reply then starts a new run and reopens the
    # case; only then does the first go on. It read the closed case from the workflow id's current
    # run — by then the new one, which does not end — and waited for ever. It must reply on the new run.
    late = _PausedAfterSeeingTheClose(engine.temporal, engine.task_queue, engine.cases.limits)

    async def second_overtakes_the_first(cid, replies):
        sending = asyncio.ensure_future(late.send(cid, replies[0]))
        await late.saw_close.wait()
        reopened = await engine.cases.send(cid, replies[1])  # a new run, the case reopened
        late.go.set()
        return [await sending, reopened]

    await two_replies_reopen_once(engine, second_overtakes_the_first)


async def test_a_reply_after_the_window_opens_a_linked_follow_up_case(temporal_env, store, tmp_path):
    # A desk that never reopens (reopen_window_hours = 0): every reply after a close is a follow-up.
    # The shipped policy names its window: set it to 0 there (a second key would not parse).
    text, n = re.subn(r"(?m)^reopen_window_hours = \d+", "reopen_window_hours = 0", DEFAULT_POLICY.read_text())
    assert n == 1
    policy = tmp_path / "no-reopen.toml"
    policy.write_text(text.replace('version = "default-2026.11"', 'version = "no-reopen"', 1))
    assert load_policy(policy).reopen_window_hours == 0
    task_queue = f"casework-test-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, task_queue, policy_path=str(policy)):
        cases = CaseworkClient(temporal_env.client, task_queue)
        cid = await asyncio.wait_for(closed_case(cases), ANSWER_WITHIN)
        late = command("record_customer_reply", CUSTOMER, message="it is broken again")
        # Each answer is definite and prompt: the follow-up case, or a refusal; never a wait.
        follow_up = await asyncio.wait_for(cases.send(cid, late), ANSWER_WITHIN)
        assert follow_up.case_id == follow_up_case_id(cid, late.command_id) != cid
        assert (follow_up.follow_up_of, follow_up.stage.value, follow_up.description) == (
            cid, "intake", "it is broken again")
        again = await asyncio.wait_for(cases.send(cid, late), ANSWER_WITHIN)  # a retry: the same case, opened once
        assert again.case_id == follow_up.case_id
        assert [x.type for x in store.history(follow_up.case_id)].count("CaseOpened") == 1
        # Staff's own commands never reopen nor follow up a closed case: refused as before.
        with pytest.raises(CommandRefused) as refused:
            await asyncio.wait_for(cases.send(cid, command("respond", message="anything else?")), ANSWER_WITHIN)
        assert refused.value.code == "case_closed"
        old = store.state(cid)
        assert (old.stage.value, old.reopen_count) == ("closed", 0)
        assert not any(isinstance(x, e.CustomerReplied) for x in store.history(cid))


async def test_a_worker_refuses_a_policy_that_does_not_load(temporal_env, store, tmp_path):
    # Accepted at the start and read first at an opening, a broken policy left every opening waiting
    # on an activity retried for as long as the file stayed broken (this file's follow-up test once
    # hung so: its policy named reopen_window_hours twice). Refused at once, named.
    policy = tmp_path / "twice.toml"
    policy.write_text(DEFAULT_POLICY.read_text().replace(
        'version = "default-2026.11"', 'version = "twice"\nreopen_window_hours = 0', 1))
    with pytest.raises(PolicyError, match="does not parse"):
        build_worker(temporal_env.client, store, f"casework-test-{uuid.uuid4()}", policy_path=str(policy))
