"""Notifications through the running engine: a hanging webhook receiver holds no command, and once a
receiver answers on that address every notification arrives, signed, under the key it had from the
start; the engine's log holds none of the case's personal data."""

from __future__ import annotations

import json
import time
import uuid

from casework.config import Settings
from casework.stores import open_case_store
from tests.notify.receiver import SECRET, Hanging, Receiver, expected_keys, wait_for


def test_a_dead_receiver_holds_no_command_and_gets_everything_once_it_answers(make_engine):
    dead = Hanging()
    engine = make_engine(webhook_url=dead.url, webhook_secret=SECRET, webhook_timeout_seconds="1",
                         notify_retry_initial_seconds="0.1", notify_retry_max_seconds="0.5",
                         public_base_url="https://desk.example.com").start()
    opened = json.loads(engine.casework(
        "open", "--customer-id", "c-9", "--customer-name", "Li Lei", "--channel", "phone", "--category", "fault",
        "--subject", "No dial tone", "--source-system", "crm", "--external-id", f"T-{uuid.uuid4()}", "--json").stdout)
    cid = opened["case_id"]

    took = []
    for args in (["escalate", cid, "--reason", "customer called twice", "--actor", "supervisor:sam"],
                 ["add-note", cid, "--text", "called back"], ["add-note", cid, "--text", "still waiting"]):
        started = time.monotonic()
        engine.casework(*args)
        took.append(time.monotonic() - started)
    status = lambda: json.loads(engine.casework("notifications", "status", "--json").stdout)  # noqa: E731
    wait_for(lambda: status()["retrying"] == 1, what="the escalation's delivery to fail")

    dead.close()
    receiver = Receiver(port=int(dead.url.split(":")[2].split("/")[0])).start()
    try:
        wait_for(lambda: status()["delivered"] == 1, what="the escalation delivered")
    finally:
        receiver.stop()

    assert max(took) < 10  # the old path held a command for over a minute on a dead receiver
    keys = expected_keys(open_case_store(Settings(data_dir=engine.data)), cid)
    assert len(keys) == 1 and set(receiver.accepted) == keys and not receiver.mismatched and not receiver.refused
    (body,) = receiver.accepted.values()
    assert (body["event"]["type"], body["case"]["id"], body["event"]["details"]["reason"]) == (
        "CaseEscalated", cid, "customer called twice")
    assert (body["case"]["subject"], body["case"]["url"]) == ("No dial tone", f"https://desk.example.com/cases/{cid}")
    assert body["event"]["summary"].startswith("Escalated to level ")
    assert body["event"]["summary"].endswith(": customer called twice")
    log = engine.log.read_text()
    assert "Li Lei" not in log and "No dial tone" not in log and "customer called twice" not in log
