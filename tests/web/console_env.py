"""A console under test: the real engine (Temporal dev server, worker with a principal registry),
a history of cases in the event store and the reporting tables, the console mounted at /console
in a tiny Starlette app served by uvicorn on a free port, and headless Chromium (Debian's) driven
by Playwright. Screenshots go to the test artifacts directory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from casework.client import CaseworkClient
from casework.config import Settings, sqlite_env
from casework.principals import Credential, load_registry
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view
from projections.view import ReportView

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CASEWORK_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"
DOCS_SHOTS = ROOT / "docs" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

KEYS = {"agent-alice": "key-alice-0123456789", "agent-bob": "key-bob-0123456789",
        "sup-sam": "key-sam-0123456789", "mia": "key-mia-0123456789"}
SECRETS = {"console": "console-secret-0123456789", "crm": "crm-secret-0123456789"}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


REGISTRY = f"""
[services.console]          # the console presents the signed-in person as the actor
acts_as = ["agent", "supervisor"]
secret_env = "CONSOLE_SECRET"

[services.crm]              # opens cases and reports what customers said
acts_as = ["system", "customer"]
secret_env = "CRM_SECRET"

[staff.agent-alice]
roles = ["agent"]
teams = ["east"]
api_key_sha256 = "{_sha(KEYS['agent-alice'])}"

[staff.agent-bob]
roles = ["agent"]
teams = ["west"]
api_key_sha256 = "{_sha(KEYS['agent-bob'])}"

[staff.sup-sam]
roles = ["supervisor"]
api_key_sha256 = "{_sha(KEYS['sup-sam'])}"

[staff.mia]                 # a manager: no domain role, the dashboard by console_managers
roles = []
api_key_sha256 = "{_sha(KEYS['mia'])}"
"""

# The live cases' policy: one target set on a round-the-clock calendar, so a case opened now has a
# first-response clock due within the board's four hours whatever the time of day of the run.
POLICY = """
version = "console-test"
[calendars.round_the_clock]
timezone = "Asia/Shanghai"
always_open = true
[[targets]]
first_response_hours = 3
next_response_hours = 3
resolution_hours = 48
calendar = "round_the_clock"
[[ladder]]
name = "agent"
[[ladder]]
name = "team_lead"
owner = "team-lead-on-duty"
[[ladder]]
name = "service_manager"
owner = "service-manager"
"""


@dataclass
class Console:
    url: str  # http://127.0.0.1:<port>/console
    store: CaseStore
    view: ReportView
    cases: CaseworkClient  # as the crm service
    history_ids: list[str]
    live: dict[str, str] = field(default_factory=dict)  # name -> case id

    def catch_up(self) -> None:
        ReportProjection(self.store, self.view).catch_up()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve(app, port: int) -> tuple[uvicorn.Server, asyncio.Task]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            return server, task
        await asyncio.sleep(0.05)
    raise RuntimeError("uvicorn did not start")


def registry_and_settings(tmp: Path):
    (tmp / "principals.toml").write_text(REGISTRY)
    registry = load_registry(tmp / "principals.toml", {"CONSOLE_SECRET": SECRETS["console"],
                                                       "CRM_SECRET": SECRETS["crm"]})
    settings = Settings(principal="console", principal_secret=SECRETS["console"], console_managers=["mia"],
                        console_secure_cookie=False, console_session_secret="test-session-secret-0123456789")
    return registry, settings


def mounted(console) -> Starlette:
    return Starlette(routes=[Mount("/console", app=console)])


def console_credential() -> Credential:
    return Credential(principal="console", secret=SECRETS["console"])


def crm_credential() -> Credential:
    return Credential(principal="crm", secret=SECRETS["crm"])


def new_view(path: Path) -> ReportView:
    return open_view(sqlite_env(path))


def command_id() -> str:
    return str(uuid.uuid4())
