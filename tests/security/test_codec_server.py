"""`casework codec-server` in its own process, asked over a real socket: it decodes a real case's
encrypted history for a token holder only, speaks Temporal's codec protocol well enough for the
`temporal` CLI itself, and admits only the UI's origin by CORS."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from casework.codec import EncryptionCodec
from casework.config import temporal_binary
from domain.ids import workflow_id_for
from tests.factory import open_case
from tests.notify.receiver import free_port

BIN = Path(sys.executable).parent
TOKEN = "codec-token-5b1e0c7d9a2f4e68"
NAME = "Ottoline Vasquez-Brindle"
UI = "http://127.0.0.1:8233"


@pytest.fixture
def codec_server(payload_key, tmp_path):
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CASEWORK_", "TEMPORAL_"))},
           "CASEWORK_PAYLOAD_KEY": payload_key, "CASEWORK_CODEC_TOKEN": f"{TOKEN},another-token-0123456789",
           "CASEWORK_CODEC_CORS_ORIGINS": UI, "CASEWORK_LOG_FORMAT": "json"}
    log = tmp_path / "codec.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "casework"), "codec-server", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    yield {"url": f"http://127.0.0.1:{port}/codec", "log": log}
    proc.terminate()
    proc.wait(15)


async def stored_input(temporal_env, encrypted_engine) -> tuple[str, dict]:
    """A case opened through the encrypted engine, and its start input as the server holds it (JSON)."""
    state = await encrypted_engine.open_case(open_case(customer={"id": "c-ovb", "name": NAME, "tier": "A"}))
    history = await temporal_env.client.get_workflow_handle(workflow_id_for(state.case_id)).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input
    return state.case_id, json_format.MessageToDict(started)


def data_of(body: dict) -> list[bytes]:
    return [base64.b64decode(p.get("data", "")) for p in body["payloads"]]


async def test_it_decodes_for_a_token_holder_only(temporal_env, encrypted_engine, codec_server, payload_key):
    _, stored = await stored_input(temporal_env, encrypted_engine)
    assert NAME.encode() not in b"".join(data_of(stored))  # what the server holds is ciphertext
    url = codec_server["url"]
    async with httpx.AsyncClient(timeout=10) as http:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0000000000"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"}):
            refused = await http.post(f"{url}/decode", json=stored, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "payloads" not in refused.json() and NAME not in refused.text
        ok = await http.post(f"{url}/decode", json=stored, headers={"Authorization": f"Bearer {TOKEN}",
                                                                    "X-Namespace": "default"})
        assert ok.status_code == 200, ok.text
        [decoded] = ok.json()["payloads"]
        assert base64.b64decode(decoded["metadata"]["encoding"]) == b"json/plain"
        assert json.loads(base64.b64decode(decoded["data"]))["open"]["customer"]["name"] == NAME
        # The second configured token works as well.
        also = await http.post(f"{url}/decode", json=stored, headers={"Authorization": "Bearer another-token-0123456789"})
        assert also.json() == ok.json()

        # Encode: sealed under the key, as the worker's own codec (an independent instance) reads it.
        plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"note": "hello"}')
        encoded = await http.post(f"{url}/encode", json=json_format.MessageToDict(Payloads(payloads=[plain])),
                                  headers={"Authorization": f"Bearer {TOKEN}"})
        assert encoded.status_code == 200
        sealed = json_format.ParseDict(encoded.json(), Payloads()).payloads
        assert sealed[0].metadata["encoding"] == b"binary/encrypted"
        assert await EncryptionCodec([base64.b64decode(payload_key)]).decode(list(sealed)) == [plain]

        # Altered ciphertext is refused by name; a body that is not the protocol's is a 400.
        tampered = json.loads(json.dumps(stored))
        raw = bytearray(base64.b64decode(tampered["payloads"][0]["data"]))
        raw[-1] ^= 1
        tampered["payloads"][0]["data"] = base64.b64encode(bytes(raw)).decode()
        bad = await http.post(f"{url}/decode", json=tampered, headers={"Authorization": f"Bearer {TOKEN}"})
        assert bad.status_code == 422 and "fails authentication" in bad.json()["error"]
        for body in (b"not json", b'{"payloads": "x"}', b'{"nope": 1}'):
            malformed = await http.post(f"{url}/decode", content=body, headers={"Authorization": f"Bearer {TOKEN}"})
            assert malformed.status_code == 400, body
    log = codec_server["log"].read_text()
    assert TOKEN not in log and NAME not in log  # it logs who asked, never what or with which token
    assert '"codec_refused"' in log and '"codec_request"' in log


async def test_cors_admits_the_ui_origin_only_and_a_browser_can_sign_in(temporal_env, encrypted_engine,
                                                                         codec_server):
    _, stored = await stored_input(temporal_env, encrypted_engine)
    url = codec_server["url"]
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type,x-namespace"}
    async with httpx.AsyncClient(timeout=10) as http:
        allowed = await http.options(f"{url}/decode", headers={"Origin": UI, **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == UI
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert {"authorization", "content-type", "x-namespace"} <= {
            h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")}
        other = await http.options(f"{url}/decode", headers={"Origin": "http://evil.example", **preflight})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        # The UI sees a refusal as a refusal (CORS headers on the 401 too).
        refused = await http.post(f"{url}/decode", json=stored, headers={"Origin": UI})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == UI

        # A browser signs in once; its cookie then stands for the token (the UI sends no custom header).
        form = await http.get(f"{url}/login")
        assert form.status_code == 200 and 'name="token"' in form.text
        wrong = await http.post(f"{url}/login", data={"token": "not-the-token-000000"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        signed_in = await http.post(f"{url}/login", data={"token": TOKEN})
        assert signed_in.status_code == 200
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/codec" in cookie
        by_cookie = await http.post(f"{url}/decode", json=stored, headers={"Origin": UI})  # the jar sends it
        assert by_cookie.status_code == 200
        assert json.loads(base64.b64decode(by_cookie.json()["payloads"][0]["data"]))["open"]["customer"]["name"] == NAME
        await http.post(f"{url}/logout")
        assert (await http.post(f"{url}/decode", json=stored)).status_code == 401


async def test_the_temporal_cli_shows_decoded_history_through_it(temporal_env, encrypted_engine, codec_server):
    case_id, _ = await stored_input(temporal_env, encrypted_engine)
    address = temporal_env.client.service_client.config.target_host

    async def show(*extra: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            temporal_binary(), "workflow", "show", "--workflow-id", workflow_id_for(case_id), "--address", address,
            "--output", "json", *extra, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")})
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode, out.decode()

    def started_input(out: str) -> tuple[bytes, bytes]:
        [payload] = json.loads(out)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
        return base64.b64decode(payload["metadata"]["encoding"]), base64.b64decode(payload["data"])

    code, out = await show("--codec-endpoint", codec_server["url"], "--codec-auth", f"Bearer {TOKEN}")
    assert code == 0, out
    encoding, data = started_input(out)
    assert encoding == b"json/plain" and json.loads(data)["open"]["customer"]["name"] == NAME
    code, out = await show()  # no codec: the ciphertext the server holds
    assert code == 0 and started_input(out)[0] == b"binary/encrypted" and NAME.encode() not in started_input(out)[1]
    # Without the token the codec server refuses; the CLI gives up (after its retries), nothing decoded.
    code, out = await show("--codec-endpoint", codec_server["url"])
    assert code != 0 and NAME not in out, out


@pytest.mark.parametrize("env,message", [
    ({"CASEWORK_CODEC_TOKEN": TOKEN}, "needs the payload keys"),
    ({"CASEWORK_PAYLOAD_KEY": "KEY"}, "needs codec_token"),
    ({"CASEWORK_PAYLOAD_KEY": "KEY", "CASEWORK_CODEC_TOKEN": "short"}, "at least 16 characters"),
    ({"CASEWORK_PAYLOAD_KEY": "KEY", "CASEWORK_CODEC_TOKEN": TOKEN, "CASEWORK_CODEC_TLS_CERT_PATH": "/nope.crt"},
     "go together"),
])
def test_it_refuses_to_start_unless_it_can_be_safe(payload_key, env, message):
    env = {k: v.replace("KEY", payload_key) for k, v in env.items()}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CASEWORK_", "TEMPORAL_"))}
    result = subprocess.run([str(BIN / "casework"), "codec-server", "--port", str(free_port())],
                            env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
