"""Hostile inputs at the HTTP API's front door, through real HTTP (uvicorn, httpx, the real Temporal dev
server and worker): each is a 422 problem that says what is wrong, never a 500, never pydantic's
developer text (its input dumps and errors.pydantic.dev links)."""

from __future__ import annotations

import uuid

import pytest
from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowUpdateFailedError

from casework.web.problems import for_people
from domain.ids import workflow_id_for
from tests.web.conftest import KEYS, problem

ALICE = {"X-API-Key": KEYS["alice"]}
CRM = {"X-API-Key": KEYS["crm"]}
SAM = {"X-API-Key": KEYS["sam"]}


def key() -> str:
    return str(uuid.uuid4())


def no_pydantic_text(body: dict) -> None:
    text = repr(body)
    assert "pydantic.dev" not in text and "input_value" not in text and "For further information" not in text, body


async def opened_case(http, customer: str) -> str:
    r = await http.post("/cases", json={"customer": {"id": customer, "name": "C"}, "channel": "phone",
                                        "category": "fault", "subject": "Printer offline",
                                        "team": "east"},  # alice's team: hers to read and act on
                        headers={"Idempotency-Key": key()})
    assert r.status_code == 201, r.text
    return r.json()["case_id"]


@pytest.mark.parametrize("hours", ["inf", "-inf", "nan", "1e400", "1e12", "8760.5", "0"])
async def test_at_risk_hours_beyond_a_year_or_not_a_number_are_malformed(deployment, hours):
    async with deployment.client(**SAM) as http:
        r = await http.get("/cases", params={"at_risk_within_hours": hours})
        body = problem(r)
        assert (r.status_code, body["code"]) == (422, "malformed"), r.text
        assert [e["field"] for e in body["errors"]] == ["query.at_risk_within_hours"]
        no_pydantic_text(body)


async def test_at_risk_hours_up_to_a_year_are_listed(deployment):
    async with deployment.client(**SAM) as http:
        for hours in ("8760", "0.5"):
            r = await http.get("/cases", params={"at_risk_within_hours": hours})
            assert r.status_code == 200, r.text


async def test_clocks_at_an_instant_out_of_range_or_without_offset_is_malformed(deployment):
    async with deployment.client(**ALICE) as http:
        cid = await opened_case(http, "inp-1")
        for at, says in [("9999-12-31T23:59:59Z", "outside 1990-2099"), ("0001-01-01T00:00:00Z", "outside 1990-2099"),
                         ("2100-01-01T00:00:00Z", "outside 1990-2099"), ("2026-05-01T09:00:00", "timezone"),
                         ("tomorrow", "datetime")]:
            r = await http.get(f"/cases/{cid}/clocks", params={"at": at})
            body = problem(r)
            assert (r.status_code, body["code"]) == (422, "malformed"), (at, r.text)
            assert [e["field"] for e in body["errors"]] == ["query.at"] and says in body["detail"], (at, body)
            no_pydantic_text(body)
        fine = await http.get(f"/cases/{cid}/clocks", params={"at": "2099-12-31T23:59:59+08:00"})
        assert fine.status_code == 200, fine.text
        assert {c["name"] for c in fine.json()} >= {"first_response", "resolution"}


async def test_a_body_that_is_not_json_says_so_and_where(deployment):
    async with deployment.client(**ALICE) as http:
        for raw, at in [(b"{bad", 1), (b'{"customer": ', 13)]:
            r = await http.post("/cases", content=raw, headers={"Idempotency-Key": key(),
                                                                "Content-Type": "application/json"})
            body = problem(r)
            assert (r.status_code, body["code"]) == (422, "malformed"), r.text
            assert body["detail"].startswith("the body is not valid JSON") and f"(at character {at})" in body["detail"]
            assert "errors" not in body  # no field names a character's position
            no_pydantic_text(body)


async def test_survey_scores_that_are_not_finite_numbers_are_refused_per_field(deployment):
    async with deployment.client(**ALICE) as http:
        cid = await opened_case(http, "inp-2")
        for kind, fields in [("respond", {"message": "On it"}), ("propose_solution", {"summary": "Replaced"})]:
            r = await http.post(f"/cases/{cid}/commands/{kind}", json=fields, headers={"Idempotency-Key": key()})
            assert r.status_code == 200, r.text
    confirm = f"/cases/{cid}/commands/confirm_solution"
    actor = '"actor": {"id": "inp-2", "role": "customer"}'
    async with deployment.client(**CRM) as http:
        for survey, field in [('{"scores": {"attitude": NaN}}', "survey.scores.attitude"),
                              ('{"scores": {"attitude": Infinity}}', "survey.scores.attitude"),
                              ('{"scores": {"attitude": 50}, "overall": -Infinity}', "survey.overall")]:
            r = await http.post(confirm, content=f'{{"survey": {survey}, {actor}}}'.encode(),
                                headers={"Idempotency-Key": key(), "Content-Type": "application/json"})
            body = problem(r)
            assert (r.status_code, body["code"]) == (422, "malformed"), r.text
            assert body["errors"] == [{"field": field, "message": "Input should be a finite number"}]
            no_pydantic_text(body)
        still = await http.get(f"/cases/{cid}")
        assert still.json()["stage"] == "solution" and still.json()["surveys"] == []  # nothing recorded
        done = await http.post(confirm, content=f'{{"survey": {{"scores": {{"attitude": 90}}}}, {actor}}}'.encode(),
                               headers={"Idempotency-Key": key(), "Content-Type": "application/json"})
        assert done.status_code == 200 and done.json()["stage"] == "closed", done.text
        assert done.json()["surveys"][0]["overall"] == 90  # above the bad-result threshold (60): closed


async def test_the_engine_refuses_a_malformed_payload_in_words_not_a_pydantic_dump(deployment):
    """Past the HTTP API (any Temporal client may send an update): the refusal reads as the problems."""
    async with deployment.client(**ALICE) as http:
        cid = await opened_case(http, "inp-3")
    handle = deployment.temporal.get_workflow_handle(workflow_id_for(cid))
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update("add_note", {"kind": "add_note", "command_id": key(), "text": 5,
                                                 "actor": {"id": "alice", "role": "agent"}})
    message = failed.value.cause.message
    assert message == "command 'add_note' has a malformed payload: text: Input should be a valid string", message


def test_problem_details_carry_no_pydantic_developer_text():
    class Survey(BaseModel):
        score: int

    with pytest.raises(ValidationError) as raised:
        Survey.model_validate({"score": "many"})
    dump = f"refused: {raised.value}"
    assert "errors.pydantic.dev" in dump  # what reached people before
    assert for_people(dump) == ("refused: 1 validation error for Survey; score; "
                                "Input should be a valid integer, unable to parse string as an integer")
    assert for_people("a plain refusal") == "a plain refusal"
