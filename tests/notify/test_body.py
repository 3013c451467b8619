"""The webhook body describes itself: the case as it stood right after the event (subject, priority,
category, stage, assignee), what happened in one sentence, when (ISO 8601 with its zone), a link to
the case and the notification id; plain JSON, never a Python repr. Expected values are written out
by hand from the events that `notified_round` appends."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

from activities.delivery import running
from activities.notify import notification_for
from activities.outbox import OutboxFollower, open_outbox
from domain.events import CaseOpened
from domain.model import Actor, Role
from tests.notify.receiver import PER_ROUND, Receiver, notified_round, open_a_case, wait_for
from tests.notify.test_outbox import outbox_env, service

BASE = "https://cases.example.com/desk/"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def bodies(store, tmp_path, base: str = BASE) -> dict[str, dict]:
    outbox = open_outbox(outbox_env(store, tmp_path))
    OutboxFollower(store, outbox, public_base_url=base).catch_up()
    return {row["idempotency_key"]: json.loads(row["body"]) for row in outbox.rows()}


def test_an_escalation_body_carries_the_case_as_it_stood_then(store, tmp_path):
    cid = open_a_case(store)
    notified_round(store, cid)  # positions: 1 opened, 2 clock started, 3 warned, 4 breached, 5 escalated, ...
    history = store.history(cid)
    escalated = history[4]
    assert escalated.type == "CaseEscalated"

    body = bodies(store, tmp_path)[f"{cid}:5"]

    assert body == {
        "schema": "casework.notification/2",
        "notification_id": f"{cid}:5",
        "case": {"id": cid, "url": f"https://cases.example.com/desk/cases/{cid}", "subject": "Printer offline",
                 "priority": "high", "category": "fault", "stage": "intake",
                 "assignee": "lead-li",  # the escalation's owner takes the case (domain/clocks.py)
                 "team": "first-line", "customer_id": "cust-1", "escalation_level": 1},
        "event": {"type": "CaseEscalated",
                  "summary": "Escalated to level 1 (team_lead), owner lead-li, cause supervisor: customer called twice",
                  "occurred_at": iso(escalated.at), "recorded_at": iso(escalated.recorded_at), "position": 5,
                  "actor": {"id": "sup-sam", "role": "supervisor"}, "on_behalf_of": None,
                  "command_id": escalated.command_id,
                  "details": {"level": 1, "level_name": "team_lead", "owner": "lead-li", "cause": "supervisor",
                              "clock": None, "reason": "customer called twice"}},
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["event"]["occurred_at"])


def test_each_body_shows_the_case_at_its_own_position_not_at_the_head(store, tmp_path):
    cid = open_a_case(store)
    notified_round(store, cid)  # escalated to lead-li at 5, de-escalated to agent-alice at 10
    found = bodies(store, tmp_path)
    at = {int(key.rpartition(":")[2]): (b["case"]["assignee"], b["case"]["escalation_level"])
          for key, b in found.items()}
    assert at == {3: ("agent-alice", 0), 4: ("agent-alice", 0), 5: ("lead-li", 1), 6: ("lead-li", 1),
                  8: ("lead-li", 1), 9: ("lead-li", 1), 10: ("agent-alice", 0)}


def test_every_summary_is_one_plain_sentence(store, tmp_path):
    cid = open_a_case(store)
    notified_round(store, cid)
    h = {event.type: event for event in store.history(cid)}
    clock, due = h["SlaClockWarned"].clock, iso(h["SlaClockWarned"].due)
    booked_at = iso(h["AppointmentBooked"].appointment.at)
    next_due = iso(h["CallbackAttempted"].next_due)

    summaries = {b["event"]["type"]: b["event"]["summary"] for b in bodies(store, tmp_path).values()}

    assert summaries == {
        "SlaClockWarned": f"SLA clock {clock} at 75% of its target, due {due}",
        "SlaClockBreached": f"SLA clock {clock} breached, it was due {due}",
        "CaseEscalated": "Escalated to level 1 (team_lead), owner lead-li, cause supervisor: customer called twice",
        "AppointmentBooked": f"Appointment booked for {booked_at} at Floor 3: replace the NIC",
        "RectificationRequired": "Rectification required: label missing on the unit",
        "CallbackAttempted": f"Callback attempt 1 (survey_request), next due {next_due}",
        "CaseDeEscalated": "De-escalated to level 0 (agent), owner agent-alice: back on track",
    }


# What a Python repr leaves in text: a dict or list literal, a datetime or enum repr, an object address.
REPR = re.compile(r"\{'|\['|datetime\.|timedelta\(|<\w[\w.]* object|\b(Stage|Priority|Category|Role|Channel|"
                  r"Tier|ClosureReason)\.\w|^(None|True|False)$")


def strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def test_no_body_holds_a_python_repr_anywhere(store, tmp_path):
    cid = open_a_case(store)
    notified_round(store, cid)
    found = bodies(store, tmp_path)
    assert len(found) == PER_ROUND
    texts = [s for body in found.values() for s in strings(body)]
    assert texts and not [s for s in texts if REPR.search(s)]
    assert REPR.search(str({"a": 1})) and REPR.search(str(Role.agent))  # the pattern does catch reprs


def test_without_a_public_base_url_the_link_is_null(store, tmp_path):
    cid = open_a_case(store)
    notified_round(store, cid)
    assert {b["case"]["url"] for b in bodies(store, tmp_path, base="").values()} == {None}


def test_a_case_id_of_any_characters_gets_an_ascii_id_and_link_and_arrives(store, tmp_path):
    cid = f"T 1001/β-{uuid.uuid4().hex[:4]}"
    at = datetime.now(UTC)
    store.append(f"open-{cid}", [CaseOpened(
        case_id=cid, command_id=f"open-{cid}", actor=Actor(id="agent-alice", role=Role.agent), at=at,
        recorded_at=at, source=None, customer={"id": "cust-2", "name": "Li Lei"}, channel="phone",
        category="enquiry", priority="low", subject="Invoice copy", description="")])
    notified_round(store, cid)
    encoded = "T%201001%2F%CE%B2-" + cid[-4:]  # space, slash and the two UTF-8 bytes of β
    receiver = Receiver().start()
    svc = service(store, tmp_path, receiver.url, public_base_url=BASE)
    with running(svc):
        wait_for(lambda: svc.outbox.counts()["delivered"] == PER_ROUND, what="every notification delivered")
    receiver.stop()

    assert set(receiver.accepted) == {f"{encoded}:{v}" for v in (3, 4, 5, 6, 8, 9, 10)}
    assert not receiver.refused and not receiver.mismatched
    body = receiver.accepted[f"{encoded}:3"]  # the warning, before anyone took the case
    assert body["case"]["id"] == cid and body["case"]["url"] == f"https://cases.example.com/desk/cases/{encoded}"
    assert (body["case"]["priority"], body["case"]["category"], body["case"]["assignee"]) == ("low", "enquiry", None)


def test_an_imported_event_has_the_body_of_the_same_event_decided_live(store):
    # imported_at (when an import stored the event) is the store's bookkeeping, not a detail of it.
    cid = open_a_case(store)
    notified_round(store, cid)
    escalated, case = store.history(cid)[4], store.state(cid)
    imported = escalated.model_copy(update={"imported_at": datetime.now(UTC)})
    assert "imported_at" in imported.model_dump() and "imported_at" not in escalated.model_dump()
    assert notification_for(imported, 5, case) == notification_for(escalated, 5, case)
