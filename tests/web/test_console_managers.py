"""The manager role is granted by the `console_managers` setting (a staff name of the principal
registry; docs/console.md): over real HTTP, a manager reads the dashboard and is shown its link, an
agent is refused it (403 page) and is not shown the link; a name the registry lacks is logged at start."""

from __future__ import annotations

import re

import httpx
import structlog

from casework.web.console import console_app
from tests.conftest import sqlite_store
from tests.web.console_env import KEYS, free_port, mounted, new_view, registry_and_settings, serve


async def _signed_in(url: str, key: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=url, timeout=30)
    page = await http.get("/console/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert (await http.post("/console/signin", data={"csrf": csrf, "credential": key})).status_code == 303
    return http


async def _console(tmp_path, managers: list[str]):
    registry, settings = registry_and_settings(tmp_path)
    settings = settings.model_copy(update={"console_managers": managers})
    app = console_app(settings, registry=registry, store=sqlite_store(tmp_path / "events.db"),
                      view=new_view(tmp_path / "reporting.db"))
    port = free_port()
    server, task = await serve(mounted(app), port)
    return f"http://127.0.0.1:{port}", server, task


async def test_console_managers_grants_the_dashboard_and_nothing_else_does(tmp_path):
    url, server, task = await _console(tmp_path, ["agent-bob"])  # bob: an agent, and a manager by the setting
    try:
        bob, alice = await _signed_in(url, KEYS["agent-bob"]), await _signed_in(url, KEYS["agent-alice"])
        dashboard = await bob.get("/console/dashboard")
        assert dashboard.status_code == 200 and 'id="figures"' in dashboard.text
        assert 'id="nav-dashboard"' in dashboard.text and 'id="nav-queue"' in dashboard.text  # both his roles
        refused = await alice.get("/console/dashboard")
        assert refused.status_code == 403 and 'id="error"' in refused.text and 'id="figures"' not in refused.text
        queue = await alice.get("/console/queue")
        assert queue.status_code == 200 and 'id="nav-dashboard"' not in queue.text
        assert (await alice.get("/console/cases?figure=opened")).status_code == 403  # nor the cases behind it
        await bob.aclose()
        await alice.aclose()
    finally:
        server.should_exit = True
        await task


async def test_a_manager_the_registry_does_not_list_is_logged_and_cannot_sign_in(tmp_path):
    with structlog.testing.capture_logs() as logs:
        url, server, task = await _console(tmp_path, ["mia", "nobody-listed"])
    try:
        said = [e for e in logs if e["event"] == "console_managers_not_in_registry"]
        assert len(said) == 1 and said[0]["names"] == ["nobody-listed"] and said[0]["log_level"] == "warning"
        mia = await _signed_in(url, KEYS["mia"])
        assert (await mia.get("/console/dashboard")).status_code == 200
        await mia.aclose()
    finally:
        server.should_exit = True
        await task
