"""`casework run` serves the HTTP API beside the worker (open mode on 127.0.0.1 here), and a taken
HTTP port stops the engine before it starts anything, naming the setting."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid

import httpx

from casework.sample_principals import SAMPLE_REGISTRY


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
                         console_secure_cookie="false", sign_in_failures_per_address="2/minute")
    engine.env["ENGINE_SECRET"] = "engine-secret-0123456789"
    engine.start()
    url = f"http://127.0.0.1:{engine.env['CASEWORK_HTTP_PORT']}"
    with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as http:
        page = http.get("/console/signin", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 200 and "<form" in page.text, page.text[:500]
        assert "登录" in page.text  # the sign-in page in Chinese
        assert http.get("/cases").status_code == 401  # the API beside it wants a credential
        assert _sign_in(http, "key-sam-0123456789").url.path == "/console/board"
    # One count of failed sign-ins for both: two wrong keys at the API, and the console holds back the right one.
    with httpx.Client(base_url=url, timeout=60) as http:
        for n in range(2):
            assert http.get("/cases", headers={"X-API-Key": f"guess-{n}"}).status_code == 401
        throttled = _sign_in(http, "key-sam-0123456789")
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1


def _sign_in(http: httpx.Client, key: str) -> httpx.Response:
    page = http.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return http.post("/console/signin", data={"csrf": csrf, "next": "", "credential": key})


def test_casework_run_on_its_defaults_offers_the_sample_sign_ins_and_says_so(make_engine):
    """`make run` as a newcomer meets it: no registry, so the console runs on the published sample
    sign-ins, and the start-up log names the console's URL, the keys, and that this is for development."""
    engine = make_engine().start()
    url = f"http://127.0.0.1:{engine.env['CASEWORK_HTTP_PORT']}"
    lines = [json.loads(line) for line in engine.log.read_text().splitlines() if line.startswith("{")]
    said = next(line for line in lines if line["event"] == "console_sample_sign_ins")
    assert said["level"] == "warning" and said["console"] == f"{url}/console"
    assert "development only" in said["meaning"]
    assert "agent-alice: dev-alice (agent, team east)" in said["sign_ins"]
    assert "mia: dev-mia (manager)" in said["sign_ins"]
    assert any(line["event"] == "auth_open_mode" for line in lines)  # the engine itself is still in open mode
    homes = {"dev-alice": "/console/queue", "dev-sam": "/console/board", "dev-mia": "/console/dashboard"}
    for key, home in homes.items():
        with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as http:
            page = _sign_in(http, key)
            assert page.status_code == 200 and page.url.path == home, (key, page.url, page.text[:300])
    with httpx.Client(base_url=url, timeout=60) as http:
        assert _sign_in(http, "dev-nobody").status_code == 401


def test_the_sample_sign_ins_can_be_turned_off(make_engine):
    engine = make_engine(console_sample_sign_ins="false").start()
    with httpx.Client(base_url=f"http://127.0.0.1:{engine.env['CASEWORK_HTTP_PORT']}", timeout=60) as http:
        assert http.get("/console/signin").status_code == 404
    assert "console_off" in engine.log.read_text() and "console_sample_sign_ins" not in engine.log.read_text()


def test_a_configured_registry_listing_a_published_sample_key_stops_the_engine(make_engine, tmp_path):
    """A copy of the sample registry made the real one: the README's keys would open it, so it is refused."""
    copied = tmp_path / "principals.toml"
    copied.write_text(SAMPLE_REGISTRY.read_text())
    engine = make_engine(principals_file=str(copied), principal="console", principal_secret="s" * 32)
    engine.env["SAMPLE_CONSOLE_SECRET"] = "s" * 32
    result = engine.run_once()
    assert result.returncode == 2, result.stderr
    assert "published sample key 'dev-alice'" in result.stderr and "Traceback" not in result.stderr
    assert not (engine.data / "temporal.db").exists()
