"""`casework list`: four cases written by the domain rules into an event store, projected into the
reporting tables as the engine does, then listed with each filter. The expected rows are worked out
by hand from what each case went through."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from casework.case_list import CaseFilter, list_cases
from casework.config import sqlite_env
from casework.policy import load_policy
from domain.commands import COMMAND_ADAPTER, OpenCase
from domain.lifecycle import decide, replay_on
from domain.model import ENGINE, Actor
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view
from tests.cli.helpers import casework, clean_env

AGENT = Actor(id="agent-ann", role="agent")
MONDAY = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, the policy's business calendar


def write(store: CaseStore, case_id: str, opened: datetime, priority: str, category: str, team: str,
          assignee: str | None, then: list[tuple[str, dict, timedelta]]) -> None:
    policy = load_policy()
    cmd = OpenCase(command_id=str(uuid.uuid4()), actor=AGENT, case_id=case_id, channel="phone", category=category,
                   priority=priority, subject="Printer offline", team=team, assignee=assignee,
                   customer={"id": f"cust-{case_id}", "name": "Wang Fang", "tier": "B"})
    events = decide(None, cmd, opened, policy.terms_for(cmd.priority, cmd.customer.tier, cmd.category, cmd.channel))
    store.append(cmd.command_id, events)
    state = replay_on(None, events)
    for kind, fields, after in then:
        actor = ENGINE if kind == "check_deadlines" else AGENT
        cmd = COMMAND_ADAPTER.validate_python({"kind": kind, "actor": actor, "command_id": str(uuid.uuid4()), **fields})
        events = decide(state, cmd, opened + after)
        store.append(cmd.command_id, events)
        state = replay_on(state, events)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("list") / "data"
    data.mkdir()
    store = CaseStore(env=sqlite_env(data / "events.db"))
    write(store, "case-a", MONDAY, "high", "fault", "east", "alice",
          [("respond", {"message": "On it"}, timedelta(minutes=30))])
    write(store, "case-b", MONDAY + timedelta(hours=1), "normal", "complaint", "west", "bob", [])
    # Opened 11:00 Monday in Shanghai: 8 business hours of first response are 6 on Monday (11-12,
    # 13-18) and 2 on Tuesday, due 11:00 Tuesday. Checked at 17:00 Tuesday (30 h later) it has breached,
    # so the case escalates one level, to the team lead on duty (the default ladder).
    write(store, "case-c", MONDAY + timedelta(hours=2), "normal", "fault", "east", "bob",
          [("check_deadlines", {}, timedelta(hours=30))])
    write(store, "case-d", MONDAY + timedelta(hours=3), "low", "enquiry", "east", None,
          [("close", {"reason": "duplicate"}, timedelta(minutes=30))])
    ReportProjection(store, open_view(sqlite_env(data / "reporting.db"))).catch_up()
    return data


A = ("case-a", "response", "high", "fault", "east", "alice", False)
B = ("case-b", "intake", "normal", "complaint", "west", "bob", False)
C = ("case-c", "intake", "normal", "fault", "east", "team-lead-on-duty", True)
D = ("case-d", "closed", "low", "enquiry", "east", None, False)


def shape(rows: list[dict]) -> list[tuple]:
    return [(r["case_id"], r["stage"], r["priority"], r["category"], r["team"], r["assignee"], r["breached"])
            for r in rows]


@pytest.mark.parametrize("filters,expected", [
    ({}, [D, C, B, A]),  # newest opened first
    ({"team": "east"}, [D, C, A]),
    ({"stage": "intake"}, [C, B]),
    ({"assignee": "bob"}, [B]),  # case-c was bob's until it escalated
    ({"priority": "normal"}, [C, B]),
    ({"category": "fault"}, [C, A]),
    ({"breached": True}, [C]),
    ({"breached": False, "team": "east"}, [D, A]),
    ({"team": "east", "category": "fault", "limit": 1}, [C]),
    ({"stage": "needs_clarification"}, []),
])
def test_each_filter(data_dir, filters, expected):
    from casework.local_data import reporting_view
    from casework.config import Settings

    assert shape(list_cases(reporting_view(Settings(data_dir=data_dir)), CaseFilter(**filters))) == expected


async def test_the_command(data_dir):
    env = clean_env(CASEWORK_DATA_DIR=str(data_dir))
    r = await casework("list", "--team", "east", "--not-breached", "--json", env=env)
    assert r.code == 0, r.err
    assert shape(json.loads(r.out)) == [D, A]
    r = await casework("list", "--breached", env=env)
    lines = r.out.splitlines()
    assert r.code == 0 and lines[0].split() == ["case_id", "stage", "priority", "tier", "category", "team",
                                                "assignee", "customer_id", "opened_at", "closed_at",
                                                "escalation_level", "breached"]
    assert len(lines) == 2 and lines[1].split()[:7] == ["case-c", "intake", "normal", "B", "fault", "east",
                                                        "team-lead-on-duty"]
    r = await casework("list", "--stage", "needs_clarification", env=env)
    assert (r.code, r.out) == (0, "(no cases match)\n")


async def test_subjects_are_shown_where_the_keyring_is_and_never_once_forgotten(tmp_path):
    from casework.config import Settings, reporting_env
    from casework.stores import open_case_store

    settings = Settings(data_dir=tmp_path / "data")
    store = open_case_store(settings)  # sealing, as `casework run` keeps it
    write(store, "case-s", MONDAY, "high", "fault", "east", "alice", [])
    ReportProjection(store, open_view(reporting_env(settings))).catch_up()
    env = clean_env(CASEWORK_DATA_DIR=str(settings.data_dir))
    r = await casework("list", "--json", env=env)
    assert r.code == 0, r.err
    assert [(row["case_id"], row["subject"]) for row in json.loads(r.out)] == [("case-s", "Printer offline")]
    store.sealer.forget("cust-case-s", "sup-sam")
    r = await casework("list", "--json", env=env)
    assert [(row["case_id"], row["subject"]) for row in json.loads(r.out)] == [("case-s", None)]
