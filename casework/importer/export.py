"""Exporting case histories as an event log for process-mining tools: XES (IEEE 1849) or CSV, one
event per command the case took, named by the command (`respond`, `propose_solution`, ...), at the
command's instant, by its actor, with the stage it left the case in.

Each event also carries the command itself as JSON (`casework:command`), so that the shipped
`casework` mapping imports an exported log back as the same commands, deciding the same facts.
Personal texts (docs/security-data.md) are withheld unless asked for: an exported log travels."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import quoteattr

from casework.importer.logs import log_format
from domain.events import PERSONAL_PATHS, Event
from domain.evolve import evolve
from domain.model import CaseState
from domain.personal import map_personal
from domain.store import CaseStore, is_case_event

WITHHELD = "[withheld]"
COLUMNS = ["case:concept:name", "concept:name", "time:timestamp", "org:resource", "org:role",
           "casework:stage", "casework:command"]
# The lifecycle fact that names the command which decided it; a command whose facts are all clock
# facts was the case's timer (check_deadlines).
_KIND = {"CaseOpened": "open", "ClarificationRequested": "request_clarification",
         "CustomerReplied": "record_customer_reply", "ResponseSent": "respond", "CaseRetriaged": "retriage",
         "CaseReassigned": "reassign", "SolutionProposed": "propose_solution",
         "SolutionRevised": "revise_solution", "FollowUpStarted": "start_follow_up",
         "CallbackAttempted": "attempt_callback", "SolutionConfirmed": "confirm_solution",
         "SolutionRejected": "reject_solution", "RectificationRecorded": "record_rectification",
         "ReplyTimeAgreed": "agree_reply_time", "AppointmentBooked": "book_appointment",
         "AppointmentConfirmed": "confirm_appointment", "ServiceReportRecorded": "record_service_report",
         "NoteAdded": "add_note", "CaseClosed": "close", "EscalationAcknowledged": "acknowledge",
         "CaseDeEscalated": "de_escalate"}
# Fields of a command copied as they are from its fact.
_SAME = {"request_clarification": ("question",), "record_customer_reply": ("message",), "respond": ("message",),
         "retriage": ("priority", "category", "reason"), "reassign": ("assignee", "team", "reason"),
         "propose_solution": ("summary",), "revise_solution": ("summary",), "confirm_solution": ("comment",),
         "reject_solution": ("reason",), "record_rectification": ("note",), "agree_reply_time": ("reply_by", "note"),
         "record_service_report": ("work_done", "parts_used"), "add_note": ("text",), "close": ("reason", "note"),
         "acknowledge": ("note",), "de_escalate": ("reason",)}


def case_histories(store: CaseStore, case_ids: list[str] | None = None) -> Iterator[list[Event]]:
    """Each case's events in order: the given cases, or every case in the store (in opening order)."""
    if case_ids is not None:
        for case_id in case_ids:
            if events := store.history(case_id):
                yield events
        return
    start = 1
    while True:
        batch = store.recorder.select_notifications(start=start, limit=500)
        if not batch:
            return
        for n in batch:
            if is_case_event(n.topic) and n.topic.endswith("CaseStream.CaseOpened"):
                case_id = store.mapper.to_domain_event(n).fact["case_id"]
                yield store.history(case_id)
        start = batch[-1].id + 1


def commands_of(events: list[Event], personal: bool = False) -> Iterator[dict]:
    """One entry per command: kind, instant, actor, the stage after it, and the command as JSON."""
    state: CaseState | None = None
    i = 0
    while i < len(events):
        group = [events[i]]
        while i + len(group) < len(events) and events[i + len(group)].command_id == group[0].command_id:
            group.append(events[i + len(group)])
        i += len(group)
        for event in group:
            state = evolve(state, event)
        facts = [event.model_dump(mode="json") for event in group]
        if not personal:
            facts = [map_personal(f, PERSONAL_PATHS.get(f["type"], ()), lambda _p, _t: WITHHELD) for f in facts]
        kind, command, at = _command(group, facts)
        yield {"case": group[0].case_id, "kind": kind, "at": at, "actor": group[0].actor,
               "stage": state.stage.value, "command": command}


def _command(group: list[Event], facts: list[dict]) -> tuple[str, dict, object]:
    by_type = {f["type"]: f for f in reversed(facts)}
    primary = next((f for f in facts if f["type"] in _KIND
                    or (f["type"] == "CaseEscalated" and f.get("cause") == "supervisor")), None)
    first = group[0]
    command: dict = {"command_id": first.command_id, "actor": first.actor.model_dump(mode="json")}
    if primary is None:  # only clock facts: the timer, or a re-applied policy
        kind = "reapply_policy" if "SlaPolicyPinned" in by_type else "check_deadlines"
        at = max(e.at for e in group)
        if kind == "reapply_policy":
            command["reason"] = next((f.get("reason") for f in facts if f.get("reason")), "policy re-applied")
        return kind, {"kind": kind, **command}, at
    at = next(e.at for e in group if e.command_id and e.type == primary["type"])
    kind = "escalate" if primary["type"] == "CaseEscalated" else _KIND[primary["type"]]
    if kind == "close" and "SolutionConfirmed" in by_type:
        kind = "confirm_solution"
    elif kind == "close" and primary["reason"] == "resolved_unconfirmed":
        kind = "expire_follow_up"
    elif kind == "close" and "RectificationRecorded" in by_type:
        kind, primary = "record_rectification", by_type["RectificationRecorded"]
    if kind == "confirm_solution":
        primary = by_type["SolutionConfirmed"]
    if kind == "open":
        command.update({k: primary[k] for k in ("case_id", "source", "customer", "channel", "category", "priority",
                                                "subject", "description", "assignee", "team", "follow_up_of")})
    for name in _SAME.get(kind, ()):
        command[name] = primary[name]
    if kind == "start_follow_up" and primary["due"]:
        command["follow_up_hours"] = _hours(primary["due"], at)
    if kind == "book_appointment":
        command.update({k: primary["appointment"][k] for k in ("at", "place", "need")})
    if kind == "escalate":
        command.update(level=primary["level"], owner=primary.get("owner"), reason=primary.get("reason") or kind)
    if kind in ("confirm_solution", "reject_solution") and "SurveyRecorded" in by_type:
        survey = by_type["SurveyRecorded"]["survey"]
        command["survey"] = {"scale": survey["scale"], "scores": survey["original"],
                             "safety_incident": survey["safety_incident"]}
    return kind, {"kind": kind, **command}, at


def _hours(due: str, at: datetime) -> float:
    return (datetime.fromisoformat(due) - at) / timedelta(hours=1)


def export_log(store: CaseStore, path: str | Path, case_ids: list[str] | None = None,
               personal: bool = False) -> int:
    """Write the cases' histories to `path` (.xes or .csv); returns the events (commands) written."""
    fmt = log_format(path)
    rows = (row for events in case_histories(store, case_ids) for row in commands_of(events, personal))
    return _write_xes(path, rows) if fmt == "xes" else _write_csv(path, rows)


def _cells(row: dict) -> list[str]:
    return [row["case"], row["kind"], row["at"].isoformat(), row["actor"].id, row["actor"].role.value,
            row["stage"], json.dumps(row["command"], ensure_ascii=False, sort_keys=True)]


def _write_csv(path: str | Path, rows: Iterator[dict]) -> int:
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for row in rows:
            out.writerow(_cells(row))
            n += 1
    return n


def _write_xes(path: str | Path, rows: Iterator[dict]) -> int:
    n, case = 0, None
    with open(path, "w", encoding="utf-8") as f:
        # xes.version is an xs:decimal in the IEEE 1849-2016 schema; no xes.features: every attribute
        # written is flat (nested-attributes would announce otherwise).
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<log xes.version="1849.2016" xmlns="http://www.xes-standard.org/">\n'
                '  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>\n'
                '  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>\n'
                '  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>\n'
                '  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>\n'
                '  <string key="concept:name" value="casework case histories"/>\n')
        for row in rows:
            if row["case"] != case:
                if case is not None:
                    f.write("  </trace>\n")
                case = row["case"]
                f.write(f'  <trace>\n    <string key="concept:name" value={quoteattr(case)}/>\n')
            cells = dict(zip(COLUMNS, _cells(row)))
            f.write("    <event>\n")
            for key in COLUMNS[1:]:
                tag = "date" if key == "time:timestamp" else "string"
                f.write(f"      <{tag} key={quoteattr(key)} value={quoteattr(cells[key])}/>\n")
            f.write('      <string key="lifecycle:transition" value="complete"/>\n    </event>\n')
            n += 1
        if case is not None:
            f.write("  </trace>\n")
        f.write("</log>\n")
    return n
