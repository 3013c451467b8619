"""Authenticated connections to the real dev server behind a real TLS front that requires a client
certificate: the worker, the client and the `casework` command get through with the right
certificates; no certificate, one from another CA, or a server the client cannot verify is refused.
The API key travels as `authorization: Bearer` metadata, as the proxy reads it off the wire."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from casework.client import CaseworkClient, connect
from casework.config import load_settings
from tests.conftest import sqlite_store
from tests.factory import command, open_case
from worker import build_worker, temporal_client

BIN = Path(sys.executable).parent


async def casework_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The `casework` command in its own process, while this loop keeps serving the TLS front."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CASEWORK_", "TEMPORAL_"))}
    proc = await asyncio.create_subprocess_exec(str(BIN / "casework"), *args, env={**clean, **env},
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode, out.decode(), err.decode()


def paths_seen(proxy, since: int) -> list[str]:
    return [h.get(":path", "") for h in proxy.requests[since:]]


async def test_worker_client_and_cli_run_a_case_over_mtls(mtls_env, mtls_proxy, tmp_path):
    settings = load_settings(environ=mtls_env)
    queue = f"casework-mtls-{uuid.uuid4()}"
    seen = len(mtls_proxy.requests)
    async with temporal_client(settings) as worker_client:  # the worker's own connection setup
        async with build_worker(worker_client, sqlite_store(tmp_path / "events.db"), queue):
            cases = CaseworkClient(await connect(settings.temporal_address, settings=settings), queue)
            state = await cases.open_case(open_case())
            state = await cases.send(state.case_id, command("respond", message="On it"))
            assert state.stage.value == "response"

            flags = ["--address", settings.temporal_address, "--tls-cert-path", mtls_env["CASEWORK_TLS_CERT_PATH"],
                     "--tls-key-path", mtls_env["CASEWORK_TLS_KEY_PATH"],
                     "--tls-ca-path", mtls_env["CASEWORK_TLS_CA_PATH"], "--task-queue", queue]
            code, out, err = await casework_cli(*flags, "show", state.case_id, "--json", env={})
            assert code == 0, err
            assert json.loads(out)["state"]["stage"] == "response"
            # The same through the settings, as the temporal CLI's variables name them.
            code, out, err = await casework_cli("show", state.case_id, "--json", env={
                "CASEWORK_TEMPORAL_ADDRESS": settings.temporal_address,
                "TEMPORAL_TLS_CLIENT_CERT_PATH": mtls_env["CASEWORK_TLS_CERT_PATH"],
                "TEMPORAL_TLS_CLIENT_KEY_PATH": mtls_env["CASEWORK_TLS_KEY_PATH"],
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH": mtls_env["CASEWORK_TLS_CA_PATH"]})
            assert code == 0, err
            assert json.loads(out)["state"]["case_id"] == state.case_id
    paths = paths_seen(mtls_proxy, seen)
    # Both sides really went through the TLS front: the worker's polls and the client's updates.
    assert any(p.endswith("/PollWorkflowTaskQueue") for p in paths)
    assert any(p.endswith("/UpdateWorkflowExecution") or p.endswith("/ExecuteMultiOperation") for p in paths)
    assert any(p.endswith("/QueryWorkflow") for p in paths)


@pytest.mark.parametrize("credentials", ["none", "rogue"])
async def test_a_client_without_a_trusted_certificate_is_refused(pki, mtls_proxy, mtls_env, credentials):
    env = {**mtls_env}
    if credentials == "none":
        del env["CASEWORK_TLS_CERT_PATH"], env["CASEWORK_TLS_KEY_PATH"]
    else:
        env["CASEWORK_TLS_CERT_PATH"] = str(pki["rogue_client"].cert)
        env["CASEWORK_TLS_KEY_PATH"] = str(pki["rogue_client"].key)
    accepted, seen = mtls_proxy.accepted, len(mtls_proxy.requests)
    settings = load_settings(environ=env)
    with pytest.raises(RuntimeError, match="connect"):
        await connect(settings.temporal_address, settings=settings)
    # Refused in the handshake: no connection was handed on, no call reached the server.
    assert (mtls_proxy.accepted, len(mtls_proxy.requests)) == (accepted, seen)
    code, out, err = await casework_cli("show", "any-case", env=env)
    assert code == 5 and err.startswith("casework: engine unreachable") and "Traceback" not in err, err


@pytest.mark.parametrize("override,refused", [
    ({"CASEWORK_TLS_CA_PATH": "rogue"}, "UnknownIssuer"),  # the server's certificate is not from our CA
    ({"CASEWORK_TLS_SERVER_NAME": "temporal.elsewhere"}, "NotValidForName"),  # nor for that name
    ({"CASEWORK_TLS_SERVER_NAME": "temporal.test"}, None),  # the name its certificate does carry
])
async def test_the_client_verifies_the_server(pki, mtls_env, override, refused):
    env = {**mtls_env, **override}
    if env["CASEWORK_TLS_CA_PATH"] == "rogue":
        env["CASEWORK_TLS_CA_PATH"] = str(pki["rogue"].ca_path)
    settings = load_settings(environ=env)
    if refused is None:
        client = await connect(settings.temporal_address, settings=settings)
        assert (await client.count_workflows()).count >= 0
        return
    with pytest.raises(RuntimeError, match=refused):
        await connect(settings.temporal_address, settings=settings)


async def test_the_api_key_is_sent_as_bearer_metadata_on_every_call(mtls_env, mtls_proxy, tmp_path):
    key_file = tmp_path / "api.key"
    key_file.write_text("casework-test-api-key-7f3a\n")
    seen = len(mtls_proxy.requests)
    settings = load_settings(environ={**mtls_env, "CASEWORK_API_KEY_FILE": str(key_file)})
    client = await connect(settings.temporal_address, settings=settings)
    await client.count_workflows()
    calls = mtls_proxy.requests[seen:]
    assert [c[":path"].rsplit("/", 1)[1] for c in calls] == ["GetSystemInfo", "CountWorkflowExecutions"]
    assert {c.get("authorization") for c in calls} == {"Bearer casework-test-api-key-7f3a"}
    # Without a key, no authorization header at all.
    seen = len(mtls_proxy.requests)
    plain = await connect(settings.temporal_address, settings=load_settings(environ=mtls_env))
    await plain.count_workflows()
    assert all("authorization" not in c for c in mtls_proxy.requests[seen:])


async def test_bad_connection_settings_stop_the_cli_with_a_named_error(mtls_env, tmp_path):
    code, out, err = await casework_cli("--address", mtls_env["CASEWORK_TEMPORAL_ADDRESS"],
                                        "--tls-key-path", mtls_env["CASEWORK_TLS_KEY_PATH"], "show", "x", env={})
    assert code == 2 and "tls_key_path is set but tls_cert_path" in err and "Traceback" not in err, err
    code, out, err = await casework_cli("show", "x", env={**mtls_env,
                                                          "CASEWORK_TLS_CERT_PATH": str(tmp_path / "gone.crt")})
    assert code == 2 and "gone.crt does not exist" in err and "Traceback" not in err, err
    # The engine refuses before it starts anything.
    code, out, err = await casework_cli("run", env={**mtls_env, "CASEWORK_DATA_DIR": str(tmp_path / "data"),
                                                    "CASEWORK_TLS_KEY_PATH": str(tmp_path / "gone.key")})
    assert code == 2 and "invalid configuration" in err and "gone.key does not exist" in err, err
    assert "Traceback" not in err and not (tmp_path / "data").exists()
