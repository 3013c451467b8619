"""Payload encryption through the real dev server: with a payload key, the history Temporal keeps
holds no customer data in clear (read without the codec), while casework reads its cases as before."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client

from casework.client import CaseworkClient
from casework.codec import EncryptionCodec, decode_in_place
from domain.ids import workflow_id_for
from tests.factory import command, open_case
from tests.security.conftest import new_key
from tests.security.test_tls import casework_cli

BIN = Path(sys.executable).parent
NAME = "Zebulon Quattlebaum-Xu"  # a name no other test uses
SECRET_DETAIL = "ledger 4471 at Quattlebaum Mews"


async def raw_history(plain: Client, case_id: str) -> tuple[bytes, list]:
    """The case's history as the server stores it, fetched by a client without the codec."""
    history = await plain.get_workflow_handle(workflow_id_for(case_id)).fetch_history()
    return b"".join(e.SerializeToString() for e in history.events), history.events


async def test_history_holds_no_customer_data_in_clear(temporal_env, engine, encrypted_engine):
    customer = {"id": "cust-zq", "name": NAME, "tier": "B"}
    # The probe first, on a case run without a key: the same read finds the name in clear.
    control = await engine.cases.open_case(open_case(customer=customer, description=SECRET_DETAIL))
    raw, _ = await raw_history(temporal_env.client, control.case_id)
    assert NAME.encode() in raw and SECRET_DETAIL.encode() in raw

    cases = encrypted_engine
    state = await cases.open_case(open_case(customer=customer, description=SECRET_DETAIL))
    state = await cases.send(state.case_id, command("respond", message=f"Dear {NAME}, on it"))
    assert (state.customer.name, state.description, state.stage.value) == (NAME, SECRET_DETAIL, "response")
    raw, events = await raw_history(temporal_env.client, state.case_id)
    assert len(events) > 5
    for secret in (NAME, SECRET_DETAIL, "Quattlebaum", "cust-zq", "Dear "):
        assert secret.encode() not in raw, secret
    started = events[0].workflow_execution_started_event_attributes
    assert [p.metadata["encoding"] for p in started.input.payloads] == [b"binary/encrypted"]
    # The codec-enabled client reads the same history in full.
    codec = cases.client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    for event in events:
        await decode_in_place(event, codec)
    decoded = b"".join(e.SerializeToString() for e in events)
    assert NAME.encode() in decoded and SECRET_DETAIL.encode() in decoded
    types = [t.type for t in await cases.timeline(state.case_id)]
    assert types[0] == "CaseOpened" and "ResponseSent" in types


async def test_a_closed_case_is_searched_for_a_command_through_the_codec(temporal_env, encrypted_engine):
    cases = encrypted_engine
    state = await cases.open_case(open_case())
    sent = command("respond", message="On it")
    await cases.send(state.case_id, sent)
    workflow_id = workflow_id_for(state.case_id)
    assert await cases._stored_digest(workflow_id, sent.command_id) == sent.digest()
    assert await cases._stored_digest(workflow_id, str(uuid.uuid4())) is None
    # Without the codec the stored command cannot be seen: what decoding in the search is for.
    assert await CaseworkClient(temporal_env.client)._stored_digest(workflow_id, sent.command_id) is None


async def test_the_engine_process_encrypts_over_mtls(temporal_env, mtls_env, tmp_path):
    """`casework run` and the `casework` command as users run them: mTLS to the server, a payload key."""
    env = {**mtls_env, "CASEWORK_PAYLOAD_KEY": new_key(), "CASEWORK_DATA_DIR": str(tmp_path / "data"),
           "CASEWORK_TASK_QUEUE": f"casework-proc-{uuid.uuid4()}", "CASEWORK_PROJECTIONS": "false",
           "CASEWORK_NOTIFICATIONS": "false", "CASEWORK_LOG_FORMAT": "json"}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CASEWORK_", "TEMPORAL_"))}
    log = tmp_path / "engine.log"
    with open(log, "wb") as out:
        proc = await asyncio.create_subprocess_exec(str(BIN / "casework"), "run", env={**clean, **env},
                                                    stdout=out, stderr=asyncio.subprocess.STDOUT)
    try:
        for _ in range(600):
            if "worker_started" in log.read_text():
                break
            assert proc.returncode is None, log.read_text()
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the engine did not start: " + log.read_text())
        code, out, err = await casework_cli(
            "open", "--customer-id", "cust-zq", "--customer-name", NAME, "--channel", "phone", "--category",
            "fault", "--subject", "Printer offline", "--description", SECRET_DETAIL, "--json", env=env)
        assert code == 0, err
        case_id = json.loads(out)["case_id"]
        code, out, err = await casework_cli("show", case_id, "--json", env=env)
        assert code == 0, err
        assert json.loads(out)["state"]["customer"]["name"] == NAME
        raw, _ = await raw_history(temporal_env.client, case_id)
        assert NAME.encode() not in raw and SECRET_DETAIL.encode() not in raw
        # The same command without the key sees ciphertext it cannot read, and says so.
        code, out, err = await casework_cli("show", case_id, env={k: v for k, v in env.items()
                                                                   if k != "CASEWORK_PAYLOAD_KEY"})
        assert code == 1 and NAME not in out + err and "Traceback" not in err, err
        assert "cannot read the case: payload is encrypted" in err and "no payload key is configured" in err
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
