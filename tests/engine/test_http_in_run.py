"""`casework run` serves the HTTP API beside the worker (open mode on 127.0.0.1 here), and a taken
HTTP port stops the engine before it starts anything, naming the setting."""

from __future__ import annotations

import socket
import time
import uuid

import httpx


def test_casework_run_serves_the_http_api(make_engine):
    engine = make_engine().start()
    url = f"http://127.0.0.1:{engine.env['CASEWORK_HTTP_PORT']}"
    with httpx.Client(base_url=url, timeout=60) as http:
        unnamed = http.post("/cases", headers={"Idempotency-Key": str(uuid.uuid4())}, json={
            "customer": {"id": "c-run", "name": "Plant 3"}, "channel": "email", "category": "fault", "subject": "Pump failure"})
        assert unnamed.status_code == 422 and unnamed.json()["code"] == "actor_required"  # open mode: say who
        opened = http.post("/cases", headers={"Idempotency-Key": str(uuid.uuid4())}, json={
            "customer": {"id": "c-run", "name": "Plant 3"}, "channel": "email", "category": "fault", "subject": "Pump failure",
            "actor": {"id": "gw", "role": "system"}})
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["case_id"]
        assert http.get(f"/cases/{case_id}").json()["subject"] == "Pump failure"
        deadline = time.monotonic() + 30
        while True:  # the engine's own projection feeds the listing, its keyring opens the subject
            items = http.get("/cases", params={"text": "pump"}).json()["items"]
            if [c["case_id"] for c in items] == [case_id]:
                break
            assert time.monotonic() < deadline, items
            time.sleep(0.3)


def test_a_taken_http_port_stops_the_engine(make_engine):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        engine = make_engine(http_port=str(taken.getsockname()[1]))
        result = engine.run_once()
    assert result.returncode == 2, result.stderr
    assert "CASEWORK_HTTP_PORT" in result.stderr and "cannot listen" in result.stderr
    assert not (engine.data / "temporal.db").exists()  # nothing started
