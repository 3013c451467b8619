"""The engine as users meet it: `casework run` in its own process on its embedded defaults, driven
by the `casework` command and by the `temporal` CLI alone (the contract other languages use)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from casework.config import Settings, temporal_binary
from casework.stores import open_case_store
from tests.workflows.helpers import SLA_TYPES

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def running_engine(tmp_path_factory):
    data = tmp_path_factory.mktemp("engine-data")
    port, ui = free_port(), free_port()
    env = {**os.environ, "CASEWORK_DATA_DIR": str(data), "CASEWORK_EMBEDDED_PORT": str(port),
           "CASEWORK_EMBEDDED_UI_PORT": str(ui), "CASEWORK_HTTP_PORT": str(free_port()),
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    log = open(data / "engine.log", "w")
    proc = subprocess.Popen([str(BIN / "casework"), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "worker_started" not in (data / "engine.log").read_text():
        assert proc.poll() is None, (data / "engine.log").read_text()
        assert time.monotonic() < deadline, "the engine did not start within 60 s"
        time.sleep(0.2)
    yield {"address": f"localhost:{port}", "data": data, "env": env, "ui": ui}
    proc.terminate()
    proc.wait(30)


def casework(engine, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "casework"), "--address", engine["address"], *args],
                            capture_output=True, text=True, env=engine["env"], timeout=60)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def temporal(engine, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([temporal_binary(), *args, "--address", engine["address"]],
                          capture_output=True, text=True, timeout=60)


def test_the_engine_serves_the_web_ui(running_engine):
    with socket.create_connection(("127.0.0.1", running_engine["ui"]), timeout=5):
        pass


def test_casework_command_opens_drives_and_shows_a_case(running_engine):
    opened = json.loads(casework(
        running_engine, "open", "--customer-id", "c-77", "--customer-name", "Zhang Wei", "--tier", "key_account",
        "--channel", "phone", "--category", "complaint", "--priority", "high", "--subject", "Late delivery",
        "--source-system", "crm", "--external-id", f"T-{uuid.uuid4()}", "--json").stdout)
    cid = opened["case_id"]

    refused = casework(running_engine, "start-follow-up", cid, ok=False)
    assert refused.returncode == 3 and "'start_follow_up'" in refused.stderr and "'intake'" in refused.stderr

    casework(running_engine, "respond", cid, "--message", "We are sorry; checking with the courier")
    casework(running_engine, "request-clarification", cid, "--question", "Order number?")
    casework(running_engine, "record-customer-reply", cid, "--message", "SO-991", "--actor", "customer:c-77")
    casework(running_engine, "propose-solution", cid, "--summary", "Re-shipped by express")
    casework(running_engine, "start-follow-up", cid, "--follow-up-hours", "48")
    casework(running_engine, "confirm-solution", cid, "--actor", "customer:c-77")

    shown = json.loads(casework(running_engine, "show", cid, "--json").stdout)
    assert shown["state"]["stage"] == "closed" and shown["state"]["closure_reason"] == "resolved"
    lifecycle = [t["type"] for t in shown["timeline"] if not t["type"].startswith(SLA_TYPES)]
    assert lifecycle == [
        "CaseOpened", "ResponseSent", "ClarificationRequested", "CustomerReplied", "SolutionProposed",
        "FollowUpStarted", "SolutionConfirmed", "CaseClosed"]
    assert "SlaPolicyPinned" in [t["type"] for t in shown["timeline"]]
    stored = open_case_store(Settings(data_dir=running_engine["data"])).history(cid)
    assert [e.type for e in stored] == [t["type"] for t in shown["timeline"]]


def test_bad_input_to_the_casework_command_says_what_is_wrong(running_engine):
    result = casework(running_engine, "open", "--customer-id", "c", "--customer-name", "C", "--channel", "fax",
                      "--category", "fault", "--subject", "x", ok=False)
    assert result.returncode == 2 and "channel" in result.stderr
    result = casework(running_engine, "add-note", str(uuid.uuid4()), "--text", "hello", ok=False)
    assert result.returncode == 4 and "no case with id" in result.stderr


def test_the_temporal_cli_alone_opens_drives_to_close_and_queries_a_case(running_engine):
    cid = f"cli-{uuid.uuid4()}"
    wid = f"case-{cid}"
    agent = {"id": "agent-go", "role": "agent"}
    opening = {"open": {"command_id": "open-1", "actor": agent, "channel": "email", "category": "fault",
                        "priority": "urgent", "subject": "Pump failure",
                        "customer": {"id": "c-1", "name": "Plant 3", "tier": "A"}}}
    started = temporal(running_engine, "workflow", "start", "--type", "ServiceCase", "--task-queue", "casework",
                       "--workflow-id", wid, "--input", json.dumps(opening))
    assert started.returncode == 0, started.stderr

    def update(name: str, command_id: str, **fields) -> subprocess.CompletedProcess:
        payload = {"command_id": command_id, "actor": fields.pop("actor", agent), **fields}
        return temporal(running_engine, "workflow", "update", "execute", "--workflow-id", wid, "--name", name,
                        "--update-id", command_id, "--input", json.dumps(payload), "-o", "json")

    assert update("respond", "c-2", message="Engineer dispatched").returncode == 0
    bad = update("confirm_solution", "c-3", actor={"id": "c-1", "role": "customer"})
    assert bad.returncode != 0 and "not allowed in stage 'response'" in (bad.stderr + bad.stdout)
    assert update("propose_solution", "c-4", summary="Seal replaced").returncode == 0
    assert update("propose_solution", "c-4", summary="Seal replaced").returncode == 0  # retried: applied once
    assert update("start_follow_up", "c-5", follow_up_hours=24).returncode == 0
    done = update("confirm_solution", "c-6", actor={"id": "c-1", "role": "customer"})
    assert done.returncode == 0, done.stderr

    queried = temporal(running_engine, "workflow", "query", "--workflow-id", wid, "--name", "state", "-o", "json")
    state = json.loads(queried.stdout)["queryResult"][0]
    assert (state["case_id"], state["stage"], state["closure_reason"]) == (cid, "closed", "resolved")
    assert state["sla"]["policy_version"] == "default-2026.11"
    described = json.loads(temporal(running_engine, "workflow", "describe", "--workflow-id", wid, "-o", "json").stdout)
    assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"


def test_a_bad_setting_is_named_and_stops_the_engine(tmp_path):
    env = {**os.environ, "CASEWORK_EVENT_STORE": "mysql", "CASEWORK_DATA_DIR": str(tmp_path)}
    result = subprocess.run([str(BIN / "casework"), "run"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "event_store" in result.stderr and "CASEWORK_EVENT_STORE" in result.stderr


def test_the_engine_fills_the_reporting_tables_that_the_reports_read(running_engine):
    drove = casework(running_engine, "demo", "--cases", "16")
    assert "drove" in drove.stdout

    deadline = time.monotonic() + 60
    while True:  # the worker's projection thread follows the event store
        status = json.loads(casework(running_engine, "projections", "status", "--json").stdout)
        if status["events_behind"] == 0 and status["head"] > 0:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)

    sla = json.loads(casework(running_engine, "report", "sla", "--by", "priority", "--json").stdout)
    assert sum(r["cases"] for r in sla) >= 16
    backlog = casework(running_engine, "report", "backlog", "--format", "csv").stdout.splitlines()
    assert backlog[0].startswith("stage,") and len(backlog) >= 2  # the demo leaves some cases open
    at_risk = json.loads(casework(running_engine, "at-risk", "--within-hours", "100000", "--json").stdout)
    assert at_risk and all(r["clock"] in ("first_response", "next_response", "resolution") for r in at_risk)
    assert [r["due"] for r in at_risk] == sorted(r["due"] for r in at_risk)
    table = casework(running_engine, "report", "escalations").stdout
    assert "level_name" in table and "supervisor" in table


def test_supervisors_schedule_pause_and_list_return_visits_from_the_command_line(running_engine):
    customer = f"ka-{uuid.uuid4().hex[:6]}"
    scheduled = json.loads(casework(running_engine, "return-visits", "schedule", "--customer-id", customer,
                                    "--customer-name", "Big Co", "--dedicated-owner", "owner-olga",
                                    "--basis", "ongoing_service", "--json").stdout)
    assert scheduled[0]["plan"]["customer"]["id"] == customer and not scheduled[0]["paused"]
    refused = casework(running_engine, "return-visits", "pause", "--customer-id", customer,
                       "--actor", "agent:alice", ok=False)
    assert refused.returncode == 3 and "allowed: supervisor)" in refused.stderr
    paused = json.loads(casework(running_engine, "return-visits", "pause", "--customer-id", customer,
                                 "--reason", "site closed", "--json").stdout)
    assert paused[0]["paused"]
    deadline = time.monotonic() + 30
    while True:
        listed = json.loads(casework(running_engine, "return-visits", "list", "--json").stdout)
        if any(p["plan"]["customer"]["id"] == customer and p["paused"] for p in listed):
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.5)
