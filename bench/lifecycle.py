"""The benchmarks' load: full-lifecycle cases (open, re-triage, clarification round, reply,
response, solution, follow-up, confirmation with a survey), `concurrency` cases at once, each
command's round trip timed. One home for it: bench.run's end-to-end section and bench.scaleout."""

from __future__ import annotations

import asyncio
import time
import uuid

from casework.client import CaseworkClient
from domain.commands import COMMAND_ADAPTER, OpenCase
from domain.model import Actor, Role

AGENT = Actor(id="bench-agent", role=Role.agent)
CUSTOMER = Actor(id="bench-customer", role=Role.customer)  # stands for each case's own customer
LIFECYCLE = [("retriage", AGENT, {"priority": "high", "reason": "bench"}),
             ("request_clarification", AGENT, {"question": "which?"}),
             ("record_customer_reply", CUSTOMER, {"message": "this"}),
             ("respond", AGENT, {"message": "on it"}),
             ("propose_solution", AGENT, {"summary": "fixed"}),
             ("start_follow_up", AGENT, {}),
             ("confirm_solution", CUSTOMER, {"survey": {"scale": "1-5", "scores": {"attitude": 5}}})]
COMMANDS_PER_CASE = len(LIFECYCLE) + 1  # the opening and the lifecycle


async def drive(client: CaseworkClient, cases: int, concurrency: int) -> tuple[list[float], float]:
    """Every case through its lifecycle to closed; returns each command's round trip and the wall time."""
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            opening = OpenCase(command_id=str(uuid.uuid4()), actor=AGENT, customer={"id": f"c{i}", "name": "Bench"},
                               channel="email", category="fault", subject="bench",
                               source={"system": "bench", "external_id": str(uuid.uuid4())})
            t = time.perf_counter()
            state = await client.open_case(opening)
            latencies.append(time.perf_counter() - t)
            for kind, actor, fields in LIFECYCLE:
                if actor == CUSTOMER:  # a customer acts on their own cases only
                    actor = Actor(id=f"c{i}", role=Role.customer)
                cmd = COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": str(uuid.uuid4()),
                                                       "actor": actor, **fields})
                t = time.perf_counter()
                state = await client.send(state.case_id, cmd)
                latencies.append(time.perf_counter() - t)
            assert state.stage.value == "closed"

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(cases)))
    return latencies, time.perf_counter() - start
