"""The attacks of the security issue, tried against the real engine with a principal registry.

Every attempt is made as an attacker would: a valid credential presenting someone else, a payload
lying about who sent it, a signature copied to another case, a command edited after signing. Each is
refused with a clear code, and the store holds exactly what it held before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from casework.client import CaseworkClient, CommandRefused
from casework.principals import Credential, load_registry
from domain.model import Actor, Role
from domain.return_visits import PlanChange, ReturnVisitPlan, SchedulePlan
from tests.factory import command, open_case
from worker import build_worker

REGISTRY = """
[services.crm]                 # a backend: opens cases, reports what its customers said
acts_as = ["system", "customer"]
secret_file = "crm.secret"

[services.console]             # the web console's gateway: people log in there
acts_as = ["agent", "supervisor", "customer"]
secret_env = "TEST_CONSOLE_SECRET"

[services.engine]              # the worker's own return-visit planner
acts_as = ["system"]
secret_file = "engine.secret"

[staff.alice]
roles = ["agent"]
teams = ["printing"]
secret_file = "alice.secret"   # alice also signs her own commands

[staff.bob]
roles = ["agent"]

[staff.sam]
roles = ["supervisor"]
"""
SECRETS = {"crm": "crm-secret-0123456789", "console": "console-secret-0123456789",
           "engine": "engine-secret-0123456789", "alice": "alice-secret-0123456789"}


def cred(name: str, secret: str | None = None) -> Credential:
    return Credential(principal=name, secret=secret or SECRETS[name])


ALICE, BOB, SAM = (Actor(id="alice", role=Role.agent), Actor(id="bob", role=Role.agent),
                   Actor(id="sam", role=Role.supervisor))
SYSTEM = Actor(id="crm", role=Role.system)


@dataclass
class Secured:
    temporal: object
    store: object
    task_queue: str

    def as_(self, credential: Credential | None) -> CaseworkClient:
        return CaseworkClient(self.temporal, self.task_queue, credential=credential)


@pytest.fixture
def registry_file(tmp_path):
    for name in ("crm", "engine", "alice"):
        (tmp_path / f"{name}.secret").write_text(SECRETS[name] + "\n")
    path = tmp_path / "principals.toml"
    path.write_text(REGISTRY)
    return path


@pytest.fixture
async def secured(temporal_env, store, registry_file):
    registry = load_registry(registry_file, {"TEST_CONSOLE_SECRET": SECRETS["console"]})
    task_queue = f"secured-{uuid.uuid4()}"
    async with build_worker(temporal_env.client, store, task_queue, registry=registry, credential=cred("engine")):
        yield Secured(temporal_env.client, store, task_queue)


def customer_actor(cid: str) -> Actor:
    return Actor(id=cid, role=Role.customer)


async def a_case(secured: Secured, customer: str) -> str:
    opening = open_case(actor=SYSTEM, customer={"id": customer, "name": f"Customer {customer}", "tier": "B"})
    return (await secured.as_(cred("crm")).open_case(opening)).case_id


async def refused(secured: Secured, case_id: str, call, code: str) -> CommandRefused:
    before = [e.model_dump() for e in secured.store.history(case_id)]
    with pytest.raises(CommandRefused) as err:
        await call
    assert err.value.code == code, err.value.message
    assert [e.model_dump() for e in secured.store.history(case_id)] == before, "a refused command stored something"
    return err.value


async def test_commands_without_a_valid_credential_are_refused(secured):
    case = await a_case(secured, "cust-a")
    note = command("add_note", actor=BOB, text="hello")
    await refused(secured, case, secured.as_(None).send(case, note), "unauthenticated")
    await refused(secured, case, secured.as_(cred("console", "guessed")).send(case, note), "unauthenticated")
    await refused(secured, case, secured.as_(cred("intruder", "whatever")).send(case, note), "unauthenticated")
    # A payload that lies about who sent it: a principal name without that principal's signature.
    lying = note.model_copy(update={"principal": "console", "signature": "0" * 64})
    await refused(secured, case, secured.as_(None).send(case, lying), "unauthenticated")


async def test_a_signature_is_good_for_its_command_on_its_case_only(secured):
    a, b = await a_case(secured, "cust-a"), await a_case(secured, "cust-b")
    signed = cred("console").sign(a, command("add_note", actor=BOB, text="for case a"))
    # Copied to another case: refused.
    await refused(secured, b, secured.as_(None).send(b, signed), "unauthenticated")
    # Edited after signing (the text, the actor): refused.
    await refused(secured, a, secured.as_(None).send(a, signed.model_copy(update={"text": "edited"})),
                  "unauthenticated")
    await refused(secured, a, secured.as_(None).send(a, signed.model_copy(update={"actor": SAM})),
                  "unauthenticated")
    # As signed, on its case: taken (and a replay of it is a retry, stored once).
    await secured.as_(None).send(a, signed)
    await secured.as_(None).send(a, signed)
    assert [e.text for e in secured.store.history(a) if e.type == "NoteAdded"] == ["for case a"]


async def test_a_customer_acts_only_on_their_own_cases(secured):
    mine, theirs = await a_case(secured, "cust-a"), await a_case(secured, "cust-b")
    crm = secured.as_(cred("crm"))
    for case in (mine, theirs):
        await secured.as_(cred("console")).send(case, command("propose_solution", actor=BOB, summary="fixed"))
        await secured.as_(cred("console")).send(case, command("start_follow_up", actor=BOB, follow_up_hours=48))
    # The attacks: customer A confirms case B; A's survey with a safety incident on case B.
    await refused(secured, theirs, crm.send(theirs, command("confirm_solution", actor=customer_actor("cust-a"))),
                  "not_your_case")
    await refused(secured, theirs, crm.send(theirs, command(
        "confirm_solution", actor=customer_actor("cust-a"),
        survey={"scale": "1-10", "scores": {"overall": 10}, "safety_incident": True})), "not_your_case")
    assert (await crm.send(mine, command("confirm_solution", actor=customer_actor("cust-a")))).stage.value == "closed"
    assert (await secured.as_(None).state(theirs)).escalation_level == 0
    # Opening a case in another customer's name.
    forged = open_case(actor=customer_actor("cust-a"), customer={"id": "cust-b", "name": "Someone Else", "tier": "B"})
    with pytest.raises(CommandRefused) as err:
        await crm.open_case(forged)
    assert err.value.code == "not_your_case"
    # The refused opening kept nothing, not even the case id: the real customer opens it.
    honest = forged.model_copy(update={"command_id": str(uuid.uuid4()), "actor": customer_actor("cust-b")})
    opened = await crm.open_case(honest)
    assert opened.customer.id == "cust-b" and len(secured.store.history(opened.case_id)) > 0


async def test_staff_claims_are_checked_against_the_registry(secured):
    case = await a_case(secured, "cust-a")
    console, crm, alice = secured.as_(cred("console")), secured.as_(cred("crm")), secured.as_(cred("alice"))
    nobody = Actor(id="nobody", role=Role.supervisor)
    await refused(secured, case, console.send(case, command("escalate", actor=nobody, reason="because")), "not_staff")
    # bob is an agent, not a supervisor.
    await refused(secured, case, console.send(case, command(
        "escalate", actor=Actor(id="bob", role=Role.supervisor), reason="x")), "not_staff")
    # The backend may not present staff at all, nor the console the engine.
    await refused(secured, case, crm.send(case, command("escalate", actor=SAM, reason="x")), "role_not_granted")
    await refused(secured, case, console.send(case, command("add_note", actor=SYSTEM, text="x")), "role_not_granted")
    # alice's own credential acts as alice only, in her own roles.
    await refused(secured, case, alice.send(case, command("escalate", actor=SAM, reason="x")), "actor_mismatch")
    await refused(secured, case, alice.send(case, command(
        "escalate", actor=Actor(id="alice", role=Role.supervisor), reason="x")), "actor_mismatch")
    assert (await alice.send(case, command("respond", actor=ALICE, message="on it"))).stage.value == "response"
    assert (await console.send(case, command("escalate", actor=SAM, reason="VIP"))).escalation_level == 1


async def test_staff_acting_for_the_customer_is_recorded_as_such(secured):
    case = await a_case(secured, "cust-a")
    console = secured.as_(cred("console"))
    await console.send(case, command("request_clarification", actor=BOB, question="Which floor?"))
    await console.send(case, command("record_customer_reply", actor=BOB, message="Floor 3 (by phone)"))
    await console.send(case, command("request_clarification", actor=BOB, question="And the model?"))
    await secured.as_(cred("crm")).send(case, command("record_customer_reply", actor=customer_actor("cust-a"),
                                                      message="HP 4200 (from the portal)"))
    replied = [e for e in secured.store.history(case) if e.type == "CustomerReplied"]
    assert [(e.actor.id, e.on_behalf_of) for e in replied] == [("bob", "cust-a"), ("cust-a", None)]


async def test_return_visit_plans_are_checked_like_cases(secured):
    customer = f"ka-{uuid.uuid4().hex[:6]}"
    plan = ReturnVisitPlan(customer={"id": customer, "name": "Big Co", "tier": "key_account"},
                           first_due=datetime.now(UTC) + timedelta(days=30))
    with pytest.raises(CommandRefused) as err:
        await secured.as_(None).schedule_return_visits(SchedulePlan(actor=SAM, plan=plan))
    assert err.value.code == "unauthenticated"
    console = secured.as_(cred("console"))
    status = await console.schedule_return_visits(SchedulePlan(actor=SAM, plan=plan))
    assert not status.paused
    nobody = Actor(id="nobody", role=Role.supervisor)
    with pytest.raises(CommandRefused) as err:
        await console.change_return_visits(customer, "pause", PlanChange(actor=nobody, reason="x"))
    assert err.value.code == "not_staff"
    with pytest.raises(CommandRefused) as err:
        await secured.as_(cred("console", "wrong")).change_return_visits(customer, "pause", PlanChange(actor=SAM))
    assert err.value.code == "unauthenticated"
    assert not (await console.schedule_return_visits(SchedulePlan(actor=SAM, plan=plan))).paused
    assert (await console.change_return_visits(customer, "pause", PlanChange(actor=SAM, reason="site closed"))).paused
