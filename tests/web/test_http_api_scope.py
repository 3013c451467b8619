"""Whose cases a staff credential reaches over HTTP: the console's rule (casework/access.py), through real
HTTP against the real engine. Registry (tests/web/conftest.py): alice agent of team east, bob agent of
team west, sam supervisor, lead-li agent and supervisor with no team, mia a console manager with no
domain role, ned listed staff with no role at all, crm a service presenting system, customer and agent."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.web.conftest import KEYS, problem

ALICE, BOB, SAM = ({"X-API-Key": KEYS[n]} for n in ("alice", "bob", "sam"))
CRM, MIA, NED = ({"X-API-Key": KEYS[n]} for n in ("crm", "mia", "ned"))
SYSTEM = {"id": "crm", "role": "system"}


def key() -> dict:
    return {"Idempotency-Key": str(uuid.uuid4())}


def opening(subject: str, **extra) -> dict:
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    return {"customer": {"id": customer, "name": "Customer"}, "channel": "phone", "category": "fault",
            "subject": subject, "actor": SYSTEM, **extra}


async def crm_opens(deployment, subject: str, **extra) -> str:
    async with deployment.client(**CRM) as http:
        r = await http.post("/cases", json=opening(subject, **extra), headers=key())
        assert r.status_code == 201, r.text
        return r.json()["case_id"]


async def test_an_agent_reads_and_acts_on_their_own_and_their_teams_cases_only(deployment):
    east = await crm_opens(deployment, "Boiler pressure low", team="east")
    async with deployment.client(**BOB) as http:  # team west: the case does not exist for him
        for path in (f"/cases/{east}", f"/cases/{east}/timeline", f"/cases/{east}/clocks"):
            r = await http.get(path)
            assert r.status_code == 404 and problem(r)["code"] == "unknown_case", (path, r.text)
        r = await http.post(f"/cases/{east}/commands/respond", json={"message": "mine now"}, headers=key())
        assert r.status_code == 404 and problem(r)["code"] == "unknown_case"
        r = await http.post(f"/cases/{east}/commands/reassign", json={"assignee": "bob", "reason": "mine"},
                            headers=key())
        assert r.status_code == 403 and problem(r)["code"] == "role_not_allowed"
        # Opening again under its id does not hand him the case's state either.
        r = await http.post("/cases", json={**opening("probe"), "case_id": east, "actor": None}, headers=key())
        assert r.status_code == 409 and problem(r)["code"] == "already_open" and "Boiler" not in r.text
    async with deployment.client(**ALICE) as http:  # team east
        assert (await http.get(f"/cases/{east}")).json()["subject"] == "Boiler pressure low"
        assert (await http.get(f"/cases/{east}/timeline")).status_code == 200
        r = await http.post(f"/cases/{east}/commands/respond", json={"message": "On my way"}, headers=key())
        assert r.status_code == 200 and r.json()["stage"] == "response", r.text
        r = await http.post(f"/cases/{east}/commands/reassign", json={"assignee": "alice", "reason": "mine"},
                            headers=key())  # reassign is for supervisors, as in the console
        body = problem(r)
        assert r.status_code == 403 and body["code"] == "role_not_allowed" and "supervisor" in body["detail"]
        assert (await http.get(f"/cases/{east}")).json()["assignee"] is None  # nothing applied
    async with deployment.client(**SAM) as http:  # a supervisor reaches every case and reassigns
        r = await http.post(f"/cases/{east}/commands/reassign", json={"assignee": "bob", "reason": "cover"},
                            headers=key())
        assert r.status_code == 200 and (r.json()["assignee"], r.json()["team"]) == ("bob", "east"), r.text
    async with deployment.client(**BOB) as http:  # now his own case
        assert (await http.get(f"/cases/{east}")).status_code == 200
        r = await http.post(f"/cases/{east}/commands/add_note", json={"text": "taking it"}, headers=key())
        assert r.status_code == 200 and r.json()["notes_count"] == 1
    async with deployment.client(**CRM) as http:  # a service keeps the domain's reach for the agent it presents
        r = await http.post(f"/cases/{east}/commands/reassign",
                            json={"assignee": "alice", "reason": "back", "actor": {"id": "alice", "role": "agent"}},
                            headers=key())
        assert r.status_code == 200 and r.json()["assignee"] == "alice", r.text
    async with deployment.client(**BOB) as http:  # no longer his, and east is not his team
        assert (await http.get(f"/cases/{east}")).status_code == 404


async def test_a_token_reaches_as_far_as_the_role_it_carries(deployment):
    east = await crm_opens(deployment, "Valve drips", team="east")
    as_agent = {"Authorization": f"Bearer {deployment.token('lead-li', 'agent')}"}
    as_supervisor = {"Authorization": f"Bearer {deployment.token('lead-li', 'supervisor')}"}
    async with deployment.client(**as_agent) as http:  # lead-li as an agent: no team, not the assignee
        assert problem(await http.get(f"/cases/{east}"))["code"] == "unknown_case"
    async with deployment.client(**as_supervisor) as http:
        assert (await http.get(f"/cases/{east}")).status_code == 200


async def test_the_listing_shows_an_agent_their_own_and_their_teams_cases(deployment):
    tag = uuid.uuid4().hex[:10]
    opened = {}
    for name, team, assignee in (("east-open", "east", None), ("west-open", "west", None),
                                 ("north-bob", "north", "bob"), ("north-open", "north", None),
                                 ("east-bob", "east", "bob")):
        opened[await crm_opens(deployment, f"{tag} {name}", team=team, assignee=assignee)] = name

    async def listed(http, **params) -> set[str]:
        r = await http.get("/cases", params={"text": tag, "limit": 200, **params})
        assert r.status_code == 200, r.text
        return {opened[c["case_id"]] for c in r.json()["items"]}

    async with deployment.client(**SAM) as http:
        deadline = time.monotonic() + 60
        while (everything := await listed(http)) != set(opened.values()):  # all projected
            assert time.monotonic() < deadline, everything
            await asyncio.sleep(0.3)
    async with deployment.client(**BOB) as http:
        assert await listed(http) == {"west-open", "north-bob", "east-bob"}
        assert await listed(http, team="east") == {"east-bob"}  # filters narrow the reach, never widen it
        assert await listed(http, assignee="alice") == set()
    async with deployment.client(**ALICE) as http:
        assert await listed(http) == {"east-open", "east-bob"}
    async with deployment.client(**MIA) as http:  # a manager reads every case, as in the console
        assert await listed(http) == set(opened.values())
    async with deployment.client(**NED) as http:  # listed staff with no role reaches nothing
        r = await http.get("/cases")
        assert r.status_code == 403 and problem(r)["code"] == "no_role"


async def test_a_manager_reads_but_holds_no_role_that_may_act(deployment):
    case = await crm_opens(deployment, "Meter reads zero", team="west")
    async with deployment.client(**MIA) as http:
        assert (await http.get(f"/cases/{case}")).status_code == 200
        for path, body in (("/customers/c1/forget", {"reason": "asked"}),
                           (f"/cases/{case}/commands/add_note", {"text": "x"})):
            r = await http.post(path, json=body, headers=key())
            detail = problem(r)
            assert r.status_code == 403 and detail["code"] == "no_role", (path, r.text)
            assert detail["detail"] == ("'mia' holds no role that may act (agent, supervisor or customer in the "
                                        "principal registry)")
    async with deployment.client(**NED) as http:
        r = await http.get(f"/cases/{case}")
        assert r.status_code == 403 and problem(r)["code"] == "no_role"
