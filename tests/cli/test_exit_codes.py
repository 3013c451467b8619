"""The exit codes README.md documents, from the real `casework` entry point against a real dev server:
0 done, 2 usage, 3 refused, 4 not found, 5 engine unreachable; each with one line on stderr and no
traceback."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from tests.cli.helpers import casework, cli_engine, clean_env

OPEN = ["open", "--customer-id", "c-9", "--customer-name", "Zhou Min", "--channel", "email",
        "--category", "fault", "--subject", "Pump failure"]


@pytest.fixture
async def engine(temporal_env, tmp_path):
    async with cli_engine(temporal_env, tmp_path / "data") as e:
        yield e


def one_line_error(r) -> str:
    assert "Traceback" not in r.err, r.err
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith(("casework: ", "Error: ")), r.err
    return lines[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_exit_code_table(engine):
    opened = await engine.cli(*OPEN, "--json")
    assert opened.code == 0, opened.err
    cid = json.loads(opened.out)["case_id"]

    cases = [  # (arguments, exit code, what the one line says)
        (["respond", cid], 2, "Missing option '--message'"),  # usage: click's own check
        ([*OPEN[:5], "--channel", "fax", *OPEN[7:]], 2, "'fax' is not one of"),
        (["respond", cid, "--message", "hi", "--actor", "boss"], 2, "must be ROLE:ID"),
        (["respond", cid, "--message", ""], 2, "--message: String should have at least 1 character"),
        (["start-follow-up", cid], 3, "refused (not_allowed_in_stage)"),  # the rules refuse it
        (["add-note", f"no-such-{uuid.uuid4()}", "--text", "hello"], 4, "not found: no case with id"),
        (["show", f"no-such-{uuid.uuid4()}"], 4, "not found: no case with id"),
        (["return-visits", "pause", "--customer-id", "nobody"], 4, "no return-visit plan for customer nobody"),
    ]
    for args, code, says in cases:
        r = await engine.cli(*args)
        assert (r.code, says in one_line_error(r)) == (code, True), (args, r.code, r.err)

    # The refusal stored nothing: the case is where it was.
    shown = json.loads((await engine.cli("show", cid, "--json")).out)
    assert shown["state"]["stage"] == "intake"


async def test_refusal_codes_are_the_engines(engine):
    r = await engine.cli("start-follow-up", "x")  # unknown case: not found wins over a stage refusal
    assert r.code == 4, r.err


async def test_no_server_at_the_address_is_engine_unreachable(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    for args in (["show", "c-1"], [*OPEN], ["return-visits", "list"]):
        r = await casework("--address", address, "--timeout", "5", *args, env=clean_env(CASEWORK_DATA_DIR=str(tmp_path)))
        line = one_line_error(r)
        assert r.code == 5 and f"no Temporal server answers at {address}" in line, r.err
    # TEMPORAL_ADDRESS, the standard variable, is where it looks when --address is not given.
    r = await casework("show", "c-1", env=clean_env(TEMPORAL_ADDRESS=address, CASEWORK_DATA_DIR=str(tmp_path)))
    assert r.code == 5 and address in one_line_error(r), r.err


async def test_no_worker_on_the_queue_is_said_at_once(temporal_env, tmp_path):
    address = temporal_env.client.service_client.config.target_host
    queue = f"nobody-polls-{uuid.uuid4()}"
    r = await casework("--address", address, "--task-queue", queue, *OPEN, env=clean_env(CASEWORK_DATA_DIR=str(tmp_path)),
                       timeout=30)
    line = one_line_error(r)
    assert r.code == 5 and f"no casework worker polls task queue '{queue}'" in line and "Nothing was sent" in line
    # Nothing was sent: no case was started on that queue.
    found = [w async for w in temporal_env.client.list_workflows(f"TaskQueue = '{queue}'")]
    assert found == []


async def test_a_worker_that_stopped_answering_times_out_with_a_message(temporal_env, tmp_path):
    async with cli_engine(temporal_env, tmp_path / "data") as engine:
        opened = await engine.cli(*OPEN, "--json")
        assert opened.code == 0, opened.err
        cid = json.loads(opened.out)["case_id"]
    # The worker is gone but still listed as a poller for a few minutes: the command waits --timeout.
    r = await engine.cli("--timeout", "3", "add-note", cid, "--text", "anyone?", "--command-id", "note-1")
    line = one_line_error(r)
    assert r.code == 5 and "no answer from a casework worker" in line and "within 3 s" in line, r.err
    assert "--command-id note-1" in line
