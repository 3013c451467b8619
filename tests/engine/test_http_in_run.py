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


def test_casework_run_serves_the_console_when_people_can_sign_in(make_engine, tmp_path):
    """With a principal registry (and the engine's own credential to sign with), `casework run` serves
    the web console at /console beside the API; its sign-in page answers, in the browser's language."""
    import hashlib

    registry = tmp_path / "principals.toml"
    registry.write_text(f"""
[services.engine]
acts_as = ["agent", "supervisor", "system", "customer"]
secret_env = "ENGINE_SECRET"

[staff.sup-sam]
roles = ["supervisor"]
api_key_sha256 = "{hashlib.sha256(b'key-sam-0123456789').hexdigest()}"
""")
    engine = make_engine(principals_file=str(registry), principal="engine", principal_secret="engine-secret-0123456789",
                         console_secure_cookie="false")
    engine.env["ENGINE_SECRET"] = "engine-secret-0123456789"
    engine.start()
    url = f"http://127.0.0.1:{engine.env['CASEWORK_HTTP_PORT']}"
    with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as http:
        page = http.get("/console/signin", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200 and "<form" in page.text, page.text[:500]
        assert "登录" in page.text  # the sign-in page in Chinese
        assert http.get("/cases").status_code == 401  # the API beside it wants a credential
