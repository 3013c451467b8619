"""The console's filter choices read both ways (from the dashboard's days, kept live in Shanghai,
and from the cases), over cases opened and reassigned through decide(); and the link cache's hold
on what a client sends (from a hostile review of the dashboard's speed-ups)."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from casework.config import sqlite_env
from casework.policy import load_policy
from casework.web.console import figures
from casework.web.console.app import _quoted, query_string
from domain.commands import OpenCase, Reassign
from domain.lifecycle import decide
from domain.model import Actor, Role
from projections import dashboard
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the zone the projection keeps the days in
CHONGQING = ZoneInfo("Asia/Chongqing")  # the same rules, another name: the cases are read instead
GATEWAY = Actor(id="gateway", role=Role.system)
LEAD = Actor(id="sup-sam", role=Role.supervisor)


def _open(store, case_id: str, team: str | None, channel: str, at: datetime) -> None:
    opening = OpenCase(command_id=f"open-{case_id}", actor=GATEWAY, case_id=case_id, channel=channel,
                       category="enquiry", subject="Opening hours?", team=team,
                       customer={"id": f"c-{case_id}", "name": "Customer", "tier": "C"})
    terms = load_policy().terms_for(opening.priority, opening.customer.tier, opening.category, opening.channel)
    store.append(opening.command_id, decide(None, opening, at, terms))


def _live_view(tmp_path):
    store = sqlite_store(tmp_path / "events.db")
    view = open_view({**sqlite_env(tmp_path / "reporting.db"), dashboard.ZONE_KEY: SHANGHAI.key})
    return store, view


def _distinct_over_cases(view) -> dict[str, list[str]]:
    """The oracle: every case read in plain SQL, a team of '' or none being no team."""
    rows = view.query("SELECT team, channel FROM {cases}")
    return {"team": sorted({r["team"] for r in rows} - {None, ""}), "channel": sorted({r["channel"] for r in rows})}


def test_a_team_named_empty_is_no_team_both_ways(tmp_path):
    """OpenCase accepts team="" (no min_length) and `cases` keeps ''; the days count it as no team,
    and so must the cases path (it once offered '' as a team in a zone whose days are not kept)."""
    store, view = _live_view(tmp_path)
    at = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    _open(store, "east-1", "east", "web", at)
    _open(store, "blank-1", "", "email", at + timedelta(hours=1))
    ReportProjection(store, view).catch_up()
    assert view.query("SELECT team FROM {cases} WHERE case_id = 'blank-1'") == [{"team": ""}]
    assert figures.dashboard(view, figures.Filters(start=at.date(), end=at.date()), SHANGHAI,
                             at + timedelta(days=1)).from_days  # the days are live and read
    kept, counted = figures.choices(view, SHANGHAI), figures.choices(view, CHONGQING)
    assert kept == counted == _distinct_over_cases(view) == {"team": ["east"], "channel": ["email", "web"]}


def test_a_team_reassigned_away_from_its_last_case_leaves_the_choices(tmp_path):
    """Held: the live projection deletes a day's row whose last case left the team."""
    store, view = _live_view(tmp_path)
    at = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    _open(store, "east-1", "east", "web", at)
    _open(store, "west-1", "west", "phone", at + timedelta(hours=1))
    projection = ReportProjection(store, view)
    projection.catch_up()
    assert figures.choices(view, SHANGHAI)["team"] == ["east", "west"]
    state = store.state("west-1")
    move = Reassign(command_id="move-west-1", actor=LEAD, team="east", reason="west is gone")
    store.append(move.command_id, decide(state, move, at + timedelta(hours=2)))
    projection.catch_up()
    want = _distinct_over_cases(view)
    assert want == {"team": ["east"], "channel": ["phone", "web"]}
    assert figures.choices(view, SHANGHAI) == want == figures.choices(view, CHONGQING)


def test_the_link_cache_keeps_no_megabytes_of_what_clients_send(tmp_path):
    """query_string remembers the parts it quotes, and the dashboard's team, channel and period come
    as the request sent them (Filters.query: not checked against the teams). A signed-in client
    sending distinct 5,000-character teams (a 15 KB request line, within h11's limit) must not pin
    them in the console's process: only short parts are remembered."""
    _quoted.cache_clear()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(16_384):
            query_string(figures.Filters(start=datetime(2026, 3, 1).date(), end=datetime(2026, 3, 31).date(),
                                         team=f"{i:05d}" + "/" * 4995).query(figure="opened"))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        _quoted.cache_clear()
    assert held < 32 * 2**20, f"{held / 2**20:.0f} MiB held after the requests ended"


async def test_a_dashboard_request_leaves_no_long_team_text_in_the_link_cache(tmp_path):
    """The path from a request to that cache: GET /dashboard?team=<5,000 characters> by a signed-in
    person; the team's text is not remembered after the response (a lookup misses)."""
    import re

    import httpx

    from casework.web.console import console_app
    from tests.web.console_env import KEYS, registry_and_settings

    store, view = _live_view(tmp_path)
    _open(store, "east-1", "east", "web", datetime(2026, 3, 10, 2, 0, tzinfo=UTC))
    ReportProjection(store, view).catch_up()
    registry, settings = registry_and_settings(tmp_path)
    app = console_app(settings, store=store, view=view, registry=registry)
    team = "rev15-" + "/" * 5000
    _quoted.cache_clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test") as client:
        page = await client.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        await client.post("/signin", data={"csrf": csrf, "credential": KEYS["mia"], "next": ""})
        response = await client.get("/dashboard", params={"team": team})
    assert response.status_code == 200
    hits = _quoted.cache_info().hits
    _quoted(team)
    assert _quoted.cache_info().hits == hits, "the request's team text is still held by the link cache"
