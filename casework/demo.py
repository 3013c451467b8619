"""`casework demo`: drive a few dozen varied cases through the running engine, so the reporting
tables fill and a newcomer sees every kind of path (resolved, clarified, reopened, escalated...)."""

from __future__ import annotations

import asyncio
import random
import uuid

from casework.client import CaseworkClient, CommandRefused
from domain.commands import COMMAND_ADAPTER, OpenCase
from domain.model import Actor, Role

PATHS = {
    "resolved": ["respond", "propose_solution", "start_follow_up", "confirm_solution"],
    "first_contact": ["propose_solution", "confirm_solution"],
    "clarified": ["respond", "request_clarification", "record_customer_reply", "propose_solution",
                  "start_follow_up", "confirm_solution"],
    "reopened": ["respond", "propose_solution", "start_follow_up", "reject_solution", "propose_solution",
                 "confirm_solution"],
    "escalated": ["respond", "escalate", "acknowledge", "propose_solution", "confirm_solution"],
    "cancelled": ["close"],
    "open": ["respond"],
    "waiting": ["request_clarification"],
}
FIELDS = {"respond": {"message": "We are looking into it"}, "propose_solution": {"summary": "Fixed"},
          "start_follow_up": {}, "confirm_solution": {}, "request_clarification": {"question": "Which unit?"},
          "record_customer_reply": {"message": "Unit 7"}, "reject_solution": {"reason": "Still broken"},
          "escalate": {"reason": "Customer is upset"}, "acknowledge": {}, "close": {"reason": "cancelled"}}
CUSTOMER_SENT = {"confirm_solution", "reject_solution", "record_customer_reply"}
SUPERVISOR_SENT = {"escalate", "acknowledge"}
# Each case is assigned to one agent, in their team; the names are the console's sample sign-ins
# (casework/samples/principals.toml), so after `casework demo` their queues have cases in them.
AGENTS = {"agent-alice": "east", "agent-bob": "west", "agent-chen": "east"}


def actor_for(kind: str, rng: random.Random, customer_id: str, agent: str | None = None) -> Actor:
    """Who sends `kind`: the customer, the supervisor, or `agent` (else one drawn from `rng`)."""
    if kind in CUSTOMER_SENT:
        return Actor(id=customer_id, role=Role.customer)
    if kind in SUPERVISOR_SENT:
        return Actor(id="sup-sam", role=Role.supervisor)
    return Actor(id=agent or rng.choice(list(AGENTS)), role=Role.agent)


def demo_opening(rng: random.Random, i: int) -> OpenCase:
    agent = list(AGENTS)[i % len(AGENTS)]
    return OpenCase(
        command_id=str(uuid.uuid4()), actor=Actor(id="demo-gateway", role=Role.system),
        source={"system": "demo", "external_id": f"D-{uuid.uuid4().hex[:8]}"},
        customer={"id": f"cust-{i}", "name": f"Customer {i}", "tier": rng.choice(["A", "B", "C", "key_account"]),
                  "dedicated_owner": "owner-olga"},
        channel=rng.choice(["phone", "email", "chat", "web"]),
        category=rng.choice(["enquiry", "fault", "complaint", "warranty", "suggestion"]),
        priority=rng.choice(["urgent", "high", "normal", "normal", "low"]), subject=f"Demo case {i}",
        assignee=agent, team=AGENTS[agent])


async def drive(cases: CaseworkClient, count: int = 36, seed: int = 1) -> dict[str, int]:
    rng = random.Random(seed)
    done: dict[str, int] = {}

    async def one(i: int) -> None:
        path = sorted(PATHS)[i % len(PATHS)]
        opening = demo_opening(rng, i)
        state = await cases.open_case(opening)
        for kind in PATHS[path]:
            cmd = COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": str(uuid.uuid4()),
                                                   "actor": actor_for(kind, rng, opening.customer.id,
                                                                      opening.assignee),
                                                   **FIELDS[kind]})
            try:
                state = await cases.send(state.case_id, cmd)
            except CommandRefused:
                pass  # e.g. escalated to the top by an urgent clock already
        done[path] = done.get(path, 0) + 1

    await asyncio.gather(*(one(i) for i in range(count)))
    return done
