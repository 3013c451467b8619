"""A real engine behind the HTTP API: the session's Temporal dev server, a worker with a principal
registry, the sealed SQLite store and keyring, the reporting projection on a thread, and the API
served by uvicorn on a free port (reached with httpx over a real socket)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from casework.config import Settings, reporting_env
from casework.principals import credential_for, registry_for
from casework.stores import open_case_store
from casework.web import running
from projections.runner import ReportProjection, open_view
from worker import build_worker

ISSUER, AUDIENCE = "https://idp.casework.test/", "casework-api"
KEYS = {"crm": "crm-key-91c2f0", "alice": "alice-key-4e7d11", "sam": "sam-key-0a9b3c", "bob": "bob-key-77e0d2",
        "mia": "mia-key-3f18c5", "ned": "ned-key-c40a9e"}

POLICY = """
version = "http-test-1"
warn_at = [0.5]

[calendars.business]
timezone = "UTC"
always_open = true

[[targets]]
first_response_hours = 30
next_response_hours = 30
resolution_hours = 100

[[targets]]
priority = "urgent"
first_response_hours = 0.001
next_response_hours = 1
resolution_hours = 400

[[targets]]
priority = "high"
first_response_hours = 2
next_response_hours = 2
resolution_hours = 100

[[ladder]]
name = "agent"

[[ladder]]
name = "team_lead"
owner = "lead-li"
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def registry_toml() -> str:
    return f"""
[services.http-api]
acts_as = ["agent", "supervisor", "customer", "system"]
secret_file = "http-api.secret"

[services.crm]
acts_as = ["system", "customer", "agent"]
secret_file = "crm.secret"
api_key_sha256 = "{sha(KEYS['crm'])}"

[staff.alice]
roles = ["agent"]
teams = ["east"]
api_key_sha256 = "{sha(KEYS['alice'])}"

[staff.bob]
roles = ["agent"]
teams = ["west"]
api_key_sha256 = "{sha(KEYS['bob'])}"

# mia reads the dashboard (console_managers); ned is listed staff with no role at all.
[staff.mia]
roles = []
api_key_sha256 = "{sha(KEYS['mia'])}"

[staff.ned]
roles = []
api_key_sha256 = "{sha(KEYS['ned'])}"

[staff.sam]
roles = ["supervisor"]
api_key_sha256 = "{sha(KEYS['sam'])}"

[staff.lead-li]
roles = ["agent", "supervisor"]
"""


@dataclass
class Deployment:
    url: str
    settings: Settings
    store: object
    temporal: object
    idp_key: object
    reporting_db: Path

    def client(self, **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=60)

    def token(self, sub: str, role: str) -> str:
        now = int(time.time())
        return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600, "sub": sub,
                           "casework_role": role}, self.idp_key, algorithm="RS256")

    def rows(self, sql: str, params: tuple = ()) -> list[dict]:
        """The reporting tables read directly (the oracle's view of the read models)."""
        with sqlite3.connect(self.reporting_db) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(sql, params).fetchall()]


def settings_in(directory: Path, task_queue: str, **values) -> Settings:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if "jwt_public_key_file" not in values else None
    if key is not None:
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        (directory / "idp.pem").write_bytes(pem)
        (directory / "idp.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                              serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
    (directory / "http-api.secret").write_text("http-api-secret-5d1e")
    (directory / "crm.secret").write_text("crm-secret-8a2c")
    (directory / "principals.toml").write_text(registry_toml())
    (directory / "policy.toml").write_text(POLICY)
    base = {"data_dir": directory / "data", "task_queue": task_queue, "principals_file": str(directory / "principals.toml"),
            "principal": "http-api", "principal_secret_file": str(directory / "http-api.secret"),
            "jwt_public_key_file": str(directory / "idp.pem"), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE,
            "sla_policy": str(directory / "policy.toml"), "http_port": 0, "http_engine_timeout_seconds": 20,
            "console_managers": ["mia"]}
    return Settings.model_validate({**base, **values})


@pytest.fixture(scope="module")
async def deployment(temporal_env, tmp_path_factory):
    directory = tmp_path_factory.mktemp("http-api")
    queue = f"casework-http-{uuid.uuid4()}"
    settings = settings_in(directory, queue)
    store = open_case_store(settings)
    registry = registry_for(settings)
    view = open_view(reporting_env(settings))
    projection = ReportProjection(store, view)
    stop = threading.Event()
    thread = threading.Thread(target=projection.run, args=(stop,), kwargs={"idle_seconds": 0.05}, daemon=True)
    thread.start()
    client = temporal_env.client
    idp_key = serialization.load_pem_private_key((directory / "idp.key").read_bytes(), None)
    try:
        async with build_worker(client, store, queue, policy_path=settings.sla_policy, registry=registry,
                                credential=credential_for(settings)):
            async with running(settings, client, sealer=store.sealer, store=store) as url:
                yield Deployment(url, settings, store, client, idp_key, settings.data_dir / "reporting.db")
    finally:
        stop.set()
        thread.join(10)


def problem(response: httpx.Response) -> dict:
    """The body of an error, checked to be an RFC 9457 problem with its code."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code and body["type"] == f"urn:casework:problem:{body['code']}", body
    assert body["title"] and body["detail"], body
    return body


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
