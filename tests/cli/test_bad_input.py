"""The bad inputs of issue 12, through the real `casework` entry point: each gets one clear line and
its documented exit code, never a Python traceback; a reading command run where there is no data
creates no file."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from tests.cli.helpers import BIN, casework, cli_engine, clean_env


@pytest.fixture
async def engine(temporal_env, tmp_path):
    async with cli_engine(temporal_env, tmp_path / "data") as e:
        yield e


async def opened(engine) -> str:
    r = await engine.cli("open", "--customer-id", "c-1", "--customer-name", "Wang Fang", "--channel", "phone",
                         "--category", "fault", "--subject", "Printer offline", "--json")
    assert r.code == 0, r.err
    cid = json.loads(r.out)["case_id"]
    for args in (["respond", cid, "--message", "On it"], ["request-clarification", cid, "--question", "Which floor?"],
                 ["record-customer-reply", cid, "--message", "Third", "--actor", "customer:c-1"],
                 ["add-note", cid, "--text", "Spare NIC in the van"]):
        r = await engine.cli(*args)
        assert r.code == 0, r.err
    return cid


async def test_show_into_a_reader_that_stops_early(engine):
    """`casework show X | head -1`: the reader closes the pipe before the command writes (it is still
    talking to the engine), so every write hits a closed pipe: nothing on stderr, exit 1 (as click does)."""
    cid = await opened(engine)
    for args in (["show", cid], ["show", cid, "--json"]):
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "casework"), "--address", engine.address, "--task-queue", engine.task_queue, *args,
            env=engine.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        proc._transport.get_pipe_transport(1).close()  # the reader is gone before the first byte
        err = (await asyncio.wait_for(proc.stderr.read(), 60)).decode()
        code = await proc.wait()
        assert (code, err) == (1, ""), err


async def test_show_prints_what_was_said_in_order(engine):
    cid = await opened(engine)
    r = await engine.cli("show", cid)
    assert r.code == 0 and "Traceback" not in r.err, r.err
    said = ["subject: Printer offline", "message: On it", "question: Which floor?", "message: Third",
            "text: Spare NIC in the van"]
    positions = [r.out.find(s) for s in said]
    assert -1 not in positions and positions == sorted(positions), r.out
    history = json.loads((await engine.cli("show", cid, "--json")).out)["history"]
    assert [e["type"] for e in history if e["type"] in ("ResponseSent", "ClarificationRequested", "CustomerReplied",
                                                       "NoteAdded")] == [
        "ResponseSent", "ClarificationRequested", "CustomerReplied", "NoteAdded"]


async def test_report_html_is_gone_and_says_where_the_dashboard_is(engine, tmp_path):
    """The HTML report has one home now, the console's dashboard: the old command points there, writes nothing."""
    r = await engine.cli("report-html", "--out", str(tmp_path / "r.html"))
    assert r.code == 2 and "Traceback" not in r.err and r.out == ""
    assert r.err.startswith("casework: invalid input: casework report-html is gone: the HTML report is now the web "
                            "console's manager dashboard, served by casework run at http://127.0.0.1:8235/console/"
                            "dashboard"), r.err
    assert not (tmp_path / "r.html").exists()
    assert "report-html" not in (await engine.cli("--help")).out


async def test_pausing_the_plan_of_a_customer_who_has_none(engine):
    r = await engine.cli("return-visits", "pause", "--customer-id", "nobody")
    assert r.code == 4 and "Traceback" not in r.err
    assert r.err.strip() == "casework: not found: no return-visit plan for customer nobody"


@pytest.mark.parametrize("args", [
    ["report", "sla"], ["report", "backlog", "--format", "csv"],
    ["at-risk"], ["list"], ["list", "--breached", "--json"], ["projections", "status"],
    ["notifications", "status"], ["forget-customer", "c-1", "--actor", "supervisor:sam"],
])
async def test_reading_from_another_directory_creates_nothing_and_says_where_it_looked(tmp_path, args):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = await casework(*args, env=clean_env(), cwd=elsewhere)
    assert r.code == 4 and "Traceback" not in r.err, r.err
    assert f"{elsewhere}/data/" in r.err and "does not exist" in r.err and "CASEWORK_DATA_DIR" in r.err, r.err
    assert r.out == "" and list(elsewhere.iterdir()) == []


def test_usage_errors_are_one_line_with_the_usage():
    for args in (["respond"], ["list", "--stage", "nowhere"], ["report", "nosuch"], ["--timeout", "-1", "list"],
                 ["confirm-solution", "x", "--score", "attitude"], ["nosuch-command"]):
        r = subprocess.run([str(BIN / "casework"), *args], env=clean_env(), capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "Error: " in r.stderr, (args, r.stderr)


def test_version():
    r = subprocess.run([str(BIN / "casework"), "--version"], env=clean_env(), capture_output=True, text=True,
                       timeout=60)
    from importlib.metadata import version
    assert (r.returncode, r.stdout.strip()) == (0, f"casework {version('casework')}")


def test_invalid_values_name_the_option_not_the_model():
    """What pydantic refuses is reported by option, never as its tagged-union dump; nothing is sent."""
    for args, says in [
        (["open", "--customer-id", "", "--customer-name", "n", "--channel", "phone", "--category", "fault",
          "--subject", "s"], "casework: invalid input: --customer-id: String should have at least 1 character"),
        (["book-appointment", "c-1", "--at", "2026-12-01T10:00", "--place", "x", "--need", "y"],
         "casework: invalid input: --at: Input should have timezone info"),
        (["add-note", "c-1", "--text", "bell\x07"],
         "casework: invalid input: field 'text' contains a control character ('\\x07')"),
    ]:
        r = subprocess.run([str(BIN / "casework"), "--address", "127.0.0.1:1", *args], env=clean_env(),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.startswith(says) and "Traceback" not in r.stderr, (args, r.stderr)
        assert "add_note" not in r.stderr and "OpenCase" not in r.stderr
