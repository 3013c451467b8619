"""The HTTP API through real HTTP: uvicorn on a free port, httpx, the real Temporal dev server and worker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from casework.web import running
from casework.web.openapi import DEFAULT, document
from tests.web.conftest import KEYS, problem, settings_in

ALICE = {"X-API-Key": KEYS["alice"]}
CRM = {"X-API-Key": KEYS["crm"]}
SAM = {"X-API-Key": KEYS["sam"]}


def opening(customer: str, subject: str, **extra) -> dict:
    """A case for team east (alice's, so she may read and act on what she opens) unless told otherwise."""
    return {"customer": {"id": customer, "name": f"Customer {customer}"}, "channel": "phone", "category": "fault",
            "subject": subject, "team": "east", **extra}


def key() -> str:
    return str(uuid.uuid4())


async def open_case(http, body: dict, **headers) -> dict:
    r = await http.post("/cases", json=body, headers={"Idempotency-Key": key(), **headers})
    assert r.status_code == 201, r.text
    return r.json()


async def test_open_and_send_commands_with_idempotency_keys(deployment):
    async with deployment.client(**ALICE) as http:
        body = opening("cust-1", "Printer offline", case_id=f"http-{uuid.uuid4()}")
        k = key()
        first = await http.post("/cases", json=body, headers={"Idempotency-Key": k})
        assert first.status_code == 201, first.text
        case = first.json()
        assert first.headers["location"] == f"/cases/{case['case_id']}"
        assert (case["stage"], case["subject"], case["customer"]["id"]) == ("intake", "Printer offline", "cust-1")
        again = await http.post("/cases", json=body, headers={"Idempotency-Key": k})
        assert again.status_code == 201 and again.json() == case  # the same answer, nothing opened twice
        other = await http.post("/cases", json=body, headers={"Idempotency-Key": key()})
        assert other.status_code == 200 and other.json()["case_id"] == case["case_id"]  # found, not opened

        cid, rk = case["case_id"], key()
        responded = await http.post(f"/cases/{cid}/commands/respond", json={"message": "On it"},
                                    headers={"Idempotency-Key": rk})
        assert responded.status_code == 200, responded.text
        state = responded.json()
        assert state["stage"] == "response" and state["version"] > case["version"]
        retried = await http.post(f"/cases/{cid}/commands/respond", json={"message": "On it"},
                                  headers={"Idempotency-Key": rk})
        assert retried.status_code == 200 and retried.json() == state  # applied once: the same answer
        reused = await http.post(f"/cases/{cid}/commands/respond", json={"message": "Something else"},
                                 headers={"Idempotency-Key": rk})
        assert reused.status_code == 409 and problem(reused)["code"] == "command_id_reused"

        timeline = (await http.get(f"/cases/{cid}/timeline")).json()
        assert [t["type"] for t in timeline].count("ResponseSent") == 1
        assert [t["command_id"] for t in timeline if t["type"] == "ResponseSent"] == [rk]
        assert timeline[0]["actor_id"] == "alice"  # the credential's person, not a payload's claim
        fetched = await http.get(f"/cases/{cid}")
        assert fetched.status_code == 200 and fetched.json()["stage"] == "response"
        clocks = await http.get(f"/cases/{cid}/clocks", params={"at": datetime.now(UTC).isoformat()})
        assert clocks.status_code == 200
        assert {c["name"] for c in clocks.json()} >= {"first_response", "resolution"}


async def test_refusals_are_problems_with_their_stable_codes(deployment):
    async with deployment.client(**ALICE) as http:
        cid = (await open_case(http, opening("cust-2", "Scanner noise")))["case_id"]
        wrong_stage = await http.post(f"/cases/{cid}/commands/start_follow_up", json={},
                                      headers={"Idempotency-Key": key()})
        assert wrong_stage.status_code == 409 and problem(wrong_stage)["code"] == "not_allowed_in_stage"
        role = await http.post(f"/cases/{cid}/commands/escalate", json={"reason": "slow"},
                               headers={"Idempotency-Key": key()})
        assert role.status_code == 403 and problem(role)["code"] == "role_not_allowed"  # agents do not escalate
        nothing = await http.post(f"/cases/{cid}/commands/retriage", json={"reason": "no change"},
                                  headers={"Idempotency-Key": key()})
        body = problem(nothing)
        assert nothing.status_code == 422 and body["code"] == "malformed" and "priority" in body["detail"]
        unknown_field = await http.post(f"/cases/{cid}/commands/add_note", json={"text": "x", "colour": "red"},
                                        headers={"Idempotency-Key": key()})
        assert unknown_field.status_code == 422 and problem(unknown_field)["errors"][0]["field"] == "colour"
        no_key = await http.post(f"/cases/{cid}/commands/add_note", json={"text": "x"})
        assert no_key.status_code == 422 and "Idempotency-Key" in problem(no_key)["detail"]
        huge = await http.post(f"/cases/{cid}/commands/add_note", content=b'{"text": "' + b"x" * (2 << 20) + b'"}',
                               headers={"Idempotency-Key": key(), "Content-Type": "application/json"})
        assert huge.status_code == 413 and problem(huge)["code"] == "too_large"
        missing = await http.get("/cases/no-such-case")
        assert missing.status_code == 404 and problem(missing)["code"] == "unknown_case"
        closed = await http.post(f"/cases/{cid}/commands/close", json={"reason": "duplicate"},
                                 headers={"Idempotency-Key": key()})
        assert closed.status_code == 200 and closed.json()["stage"] == "closed"
        after = await http.post(f"/cases/{cid}/commands/add_note", json={"text": "late"},
                                headers={"Idempotency-Key": key()})
        assert after.status_code == 409 and problem(after)["code"] in ("case_closed", "not_allowed_in_stage")
    async with deployment.client(**SAM) as http:  # a supervisor may; the engine says why it will not here
        escalated = await http.post(f"/cases/{cid}/commands/escalate", json={"reason": "slow"},
                                    headers={"Idempotency-Key": key()})
        assert escalated.status_code == 409 and problem(escalated)["code"] in ("case_closed", "not_allowed_in_stage")


async def test_credentials_decide_who_acts(deployment):
    async with deployment.client() as http:
        bare = await http.post("/cases", json=opening("cust-3", "x"), headers={"Idempotency-Key": key()})
        assert bare.status_code == 401 and problem(bare)["code"] == "unauthenticated"
        assert bare.headers["www-authenticate"] == "Bearer"
        assert (await http.get("/cases")).status_code == 401
        wrong = await http.get("/cases", headers={"X-API-Key": "not-a-key"})
        assert wrong.status_code == 401 and problem(wrong)["code"] == "unauthenticated"
        forged = await http.get("/cases", headers={"Authorization": "Bearer not.a.jwt"})
        assert forged.status_code == 401
    async with deployment.client(**ALICE) as http:
        cid = (await open_case(http, opening("cust-4", "Router reboots")))["case_id"]
        lying = await http.post(f"/cases/{cid}/commands/add_note",
                                json={"text": "x", "actor": {"id": "sam", "role": "supervisor"}},
                                headers={"Idempotency-Key": key()})
        assert lying.status_code == 403 and problem(lying)["code"] == "actor_mismatch"
    customer = {"Authorization": f"Bearer {deployment.token('cust-4', 'customer')}"}
    async with deployment.client(**customer) as http:
        as_other = await http.post(f"/cases/{cid}/commands/record_customer_reply",
                                   json={"message": "hi", "actor": {"id": "cust-5", "role": "customer"}},
                                   headers={"Idempotency-Key": key()})
        assert as_other.status_code == 403 and problem(as_other)["code"] == "actor_mismatch"
        replied = await http.post(f"/cases/{cid}/commands/record_customer_reply", json={"message": "hi"},
                                  headers={"Idempotency-Key": key()})
        assert replied.status_code == 200, replied.text
        assert (await http.get(f"/cases/{cid}")).status_code == 200
    stranger = {"Authorization": f"Bearer {deployment.token('cust-5', 'customer')}"}
    async with deployment.client(**stranger) as http:  # another customer's case does not exist for them
        assert problem(await http.get(f"/cases/{cid}"))["code"] == "unknown_case"
        listed = await http.get("/cases")
        assert listed.status_code == 200 and all(c["customer_id"] == "cust-5" for c in listed.json()["items"])
    async with deployment.client(**CRM) as http:  # a service names whom it reports for
        unnamed = await http.post(f"/cases/{cid}/commands/add_note", json={"text": "x"},
                                  headers={"Idempotency-Key": key()})
        assert unnamed.status_code == 422 and problem(unnamed)["code"] == "actor_required"
        named = await http.post(f"/cases/{cid}/commands/add_note",
                                json={"text": "from the CRM", "actor": {"id": "alice", "role": "agent"}},
                                headers={"Idempotency-Key": key()})
        assert named.status_code == 200 and named.json()["notes_count"] == 1


# --- listing ---------------------------------------------------------------------------------------

CASES = [  # customer, subject, priority, category, team, assignee
    ("lst-1", "Printer offline on floor 3", "high", "fault", "printing", "alice"),
    ("lst-2", "Invoice wrong", "normal", "problem", "finance", None),
    ("lst-3", "PRINTER jams daily", "normal", "fault", "printing", "lead-li"),
    ("lst-4", "Site down: total outage", "urgent", "fault", "network", "alice"),
    ("lst-5", "Refund request", "low", "problem", "finance", "alice"),
    ("lst-6", "Laser printer toner", "high", "enquiry", "printing", None),
    ("lst-7", "Complaint about the engineer", "normal", "complaint", "field", "alice"),
]


async def _listed(http, **params) -> list[dict]:
    """Every page of a listing, walked with its cursors."""
    items, cursor = [], None
    for _ in range(100):
        r = await http.get("/cases", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= params.get("limit", 50)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


@pytest.fixture(scope="module")
async def listed_cases(deployment):
    """Seven cases, their projected rows, and the urgent one's first response breached."""
    tag = uuid.uuid4().hex[:6]
    ids = {}
    async with deployment.client(**CRM) as http:
        for customer, subject, priority, category, team, assignee in CASES:
            body = opening(f"{customer}-{tag}", subject, priority=priority, category=category, team=team,
                           assignee=assignee, actor={"id": "crm", "role": "system"})
            ids[customer] = (await open_case(http, body))["case_id"]
    deadline = time.monotonic() + 60
    while True:  # projected, and the urgent case's 3.6 s target breached
        rows = deployment.rows(f"SELECT case_id, first_response_breached FROM cases WHERE case_id IN "
                               f"({','.join('?' * len(ids))})", tuple(ids.values()))
        if len(rows) == len(ids) and any(r["first_response_breached"] for r in rows):
            break
        assert time.monotonic() < deadline, rows
        await asyncio.sleep(0.3)
    return ids


def _oracle(deployment, ids: dict, keep) -> list[str]:
    """The expected listing, newest first: a plain Python filter over the projected rows."""
    cases = deployment.rows(f"SELECT * FROM cases WHERE case_id IN ({','.join('?' * len(ids))})", tuple(ids.values()))
    clocks = deployment.rows("SELECT * FROM sla_clocks")
    subject = {ids[c[0]]: c[1] for c in CASES}
    chosen = [r for r in cases if keep(r, [k for k in clocks if k["case_id"] == r["case_id"]], subject[r["case_id"]])]
    return [r["case_id"] for r in sorted(chosen, key=lambda r: (r["opened_at"], r["case_id"]), reverse=True)]


async def test_listing_filters_and_cursors(deployment, listed_cases):
    ids = listed_cases
    mine = set(ids.values())
    by_name = {v: k for k, v in ids.items()}
    async with deployment.client(**SAM) as http:
        async def ours(**params) -> list[str]:
            return [c["case_id"] for c in await _listed(http, **params) if c["case_id"] in mine]

        everything = await ours(limit=2)
        assert everything == _oracle(deployment, ids, lambda r, k, s: True) and len(everything) == 7
        assert len(set(everything)) == 7  # no case twice across pages
        assert await ours(team="printing", limit=1) == _oracle(deployment, ids, lambda r, k, s: r["team"] == "printing")
        assert {by_name[c] for c in await ours(team="printing")} == {"lst-1", "lst-3", "lst-6"}  # by hand
        assert await ours(assignee="alice") == _oracle(deployment, ids, lambda r, k, s: r["assignee"] == "alice")
        assert await ours(priority=["high", "low"]) == _oracle(
            deployment, ids, lambda r, k, s: r["priority"] in ("high", "low"))
        assert await ours(category="problem", limit=1) == _oracle(deployment, ids, lambda r, k, s: r["category"] == "problem")
        assert await ours(stage="intake") == _oracle(deployment, ids, lambda r, k, s: r["stage"] == "intake")
        breached = await ours(breached="true")
        assert breached == _oracle(deployment, ids, lambda r, k, s: any(c["breached"] for c in k))
        assert {by_name[c] for c in breached} == {"lst-4"}  # the urgent case's 3.6 s first response
        assert await ours(breached="false") == _oracle(deployment, ids, lambda r, k, s: not any(c["breached"] for c in k))
        horizon = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        at_risk = await ours(at_risk_within_hours=3)
        assert at_risk == _oracle(deployment, ids, lambda r, k, s: r["stage"] != "closed" and any(
            c["state"] == "running" and not c["breached"] and c["due"] and c["due"] <= horizon for c in k))
        assert {by_name[c] for c in at_risk} == {"lst-1", "lst-6"}  # high: due in 2 h; normal and low: 30 h
        printers = await ours(text="printer", limit=1)
        assert printers == _oracle(deployment, ids, lambda r, k, s: "printer" in s.lower())
        assert {by_name[c] for c in printers} == {"lst-1", "lst-3", "lst-6"}
        combined = await ours(text="PRINTER", team="printing", priority="normal")
        assert [by_name[c] for c in combined] == ["lst-3"]
        page = (await http.get("/cases", params={"text": "refund"})).json()["items"]
        assert [c["subject"] for c in page if c["case_id"] in mine] == ["Refund request"]
        bad = await http.get("/cases", params={"cursor": "bm90IG91cnM"})
        assert bad.status_code == 422 and problem(bad)["code"] == "bad_cursor"
        wrong = await http.get("/cases", params={"stage": "sleeping"})
        assert wrong.status_code == 422 and problem(wrong)["code"] == "malformed"


async def test_forgetting_a_customer_erases_their_subjects(deployment):
    async with deployment.client(**ALICE) as http:
        gone = (await open_case(http, opening("cust-zorb", "Zorblax heatpump hums")))["case_id"]
        kept = (await open_case(http, opening("cust-kept", "Zorblax twin unit")))["case_id"]

        async def found() -> set[str]:
            return {c["case_id"] for c in (await http.get("/cases", params={"text": "zorblax"})).json()["items"]}

        deadline = time.monotonic() + 30
        while await found() != {gone, kept}:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        assert deployment.rows("SELECT customer_id FROM case_subjects WHERE case_id = ?", (gone,)) == [
            {"customer_id": "cust-zorb"}]
        sealed = deployment.rows("SELECT subject FROM case_subjects WHERE case_id = ?", (gone,))[0]["subject"]
        assert "Zorblax" not in sealed and sealed.startswith("enc1:")  # kept sealed, not in the clear

        refused = await http.post("/customers/cust-zorb/forget", json={"reason": "asked"})
        assert refused.status_code == 403 and problem(refused)["code"] == "forget_refused"  # agents may not
    async with deployment.client(**SAM) as supervisor:
        forgot = await supervisor.post("/customers/cust-zorb/forget", json={"reason": "erasure request"})
        assert forgot.status_code == 200, forgot.text
        assert gone in forgot.json()["case_ids"] and kept not in forgot.json()["case_ids"]
    assert [(e.customer_id, e.actor.id, e.reason) for e in deployment.store.forgotten()] == [
        ("cust-zorb", "sam", "erasure request")]
    async with deployment.client(**ALICE) as http:
        async def found() -> set[str]:
            return {c["case_id"] for c in (await http.get("/cases", params={"text": "zorblax"})).json()["items"]}

        assert await found() == {kept}  # unreadable at once: the key is gone
        deadline = time.monotonic() + 30
        while deployment.rows("SELECT 1 FROM case_subjects WHERE case_id = ?", (gone,)):
            assert time.monotonic() < deadline, "the privacy audit's entry did not erase the row"
            await asyncio.sleep(0.2)
        assert deployment.rows("SELECT customer_id FROM case_subjects WHERE case_id = ?", (kept,)) == [
            {"customer_id": "cust-kept"}]
        listed = {c["case_id"]: c for c in (await http.get("/cases", params={"limit": 200})).json()["items"]}
        assert listed[gone]["subject"] is None and listed[kept]["subject"] == "Zorblax twin unit"


async def test_no_worker_on_the_queue_is_a_clear_503(deployment, temporal_env, tmp_path):
    settings = settings_in(tmp_path, f"casework-nobody-{uuid.uuid4()}", http_engine_timeout_seconds=2,
                           jwt_public_key_file=deployment.settings.jwt_public_key_file)
    async with running(settings, temporal_env.client, sealer=deployment.store.sealer) as url:
        import httpx

        async with httpx.AsyncClient(base_url=url, headers=ALICE, timeout=30) as http:
            started = time.monotonic()
            r = await http.post("/cases", json=opening("cust-9", "Nobody home"), headers={"Idempotency-Key": key()})
            assert time.monotonic() - started < 10
            body = problem(r)
            assert r.status_code == 503 and body["code"] == "no_worker" and settings.task_queue in body["detail"]
            assert r.headers["retry-after"] == "5"

            # A worker polls the queue but cannot run the case (it has no ServiceCase workflow): 504, not 503.
            from temporalio.worker import Worker

            from workflows.return_visits import ReturnVisitsWorkflow

            async with Worker(temporal_env.client, task_queue=settings.task_queue, workflows=[ReturnVisitsWorkflow]):
                r = await http.post("/cases", json=opening("cust-9", "Nobody able"), headers={"Idempotency-Key": key()})
                assert r.status_code == 504 and problem(r)["code"] == "engine_timeout", r.text


async def test_the_openapi_document_is_current_and_served(deployment):
    assert DEFAULT.read_text() == document(), "run python -m casework.web.openapi"
    async with deployment.client() as http:
        served = (await http.get("/openapi.json")).json()
    assert served == json.loads(DEFAULT.read_text())
    respond = served["paths"]["/cases/{case_id}/commands/respond"]["post"]
    assert {p["name"] for p in respond["parameters"]} == {"case_id", "Idempotency-Key"}
    body = served["components"]["schemas"]["RespondBody"]
    assert set(body["properties"]) == {"message", "actor", "occurred_at"} and body["required"] == ["message"]
    assert {"APIKeyHeader", "HTTPBearer"} <= set(served["components"]["securitySchemes"])
    assert list(respond["responses"]["409"]["content"]) == ["application/problem+json"]  # as errors are sent


async def test_return_visit_plans_over_http(deployment):
    customer = f"ka-{uuid.uuid4().hex[:8]}"
    first_due = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    plan = {"customer": {"id": customer, "name": "Plant 9", "tier": "key_account", "dedicated_owner": "alice"},
            "basis": "warranty", "first_due": first_due}
    async with deployment.client(**ALICE) as http:  # planning visits is for supervisors
        refused = await http.post("/return-visits", json={"plan": plan}, headers={"Idempotency-Key": key()})
        assert refused.status_code == 403 and problem(refused)["code"] == "role_not_allowed"
    async with deployment.client(**SAM) as http:
        scheduled = await http.post("/return-visits", json={"plan": plan}, headers={"Idempotency-Key": key()})
        assert scheduled.status_code == 200, scheduled.text
        status = scheduled.json()
        assert (status["plan"]["customer"]["id"], status["paused"], status["opened_case_ids"]) == (customer, False, [])
        assert datetime.fromisoformat(status["next_due"]) == datetime.fromisoformat(first_due)
        listed = (await http.get("/return-visits")).json()
        assert [p["plan"]["customer"]["id"] for p in listed].count(customer) == 1
        paused = await http.post(f"/return-visits/{customer}/pause", json={"reason": "site closed"},
                                 headers={"Idempotency-Key": key()})
        assert paused.status_code == 200 and paused.json()["paused"] is True
        bad = await http.post(f"/return-visits/{customer}/stop", json={}, headers={"Idempotency-Key": key()})
        assert bad.status_code == 422 and problem(bad)["code"] == "malformed"
