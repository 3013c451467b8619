"""The web console's pages, timed through the real ASGI app (httpx over ASGI: routing, the session
middleware, sign-in, the queries and the Jinja rendering), signed in as an agent, a supervisor and a
manager, over the report benchmark's read models (bench.synthetic.write_read_models).

The synthetic cases open from 2024-01-01 over 700 days; the console's clock is set to the end of
that span (NOW), so the default dashboard range (this month and the two before) holds cases. The
case page and the queue's subjects read the event store: a small real history (write_history) on
the same backend, since the synthetic read models have no events behind them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import re
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from casework.config import Settings
from casework.principals import load_registry
from casework.web.console.app import console_app
from domain.store import CaseStore
from projections.view import ReportView

NOW = datetime(2025, 12, 1, 12, tzinfo=UTC)
CONSOLE_ZONE = "Asia/Shanghai"  # the console's zone; the projection keeps the dashboard's days in it
KEYS = {"agent-1": "bench-key-agent-0123456789", "sup": "bench-key-sup-0123456789",
        "boss": "bench-key-boss-0123456789"}
SECRET = "bench-console-secret-0123456789"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


REGISTRY = f"""
[services.console]
acts_as = ["agent", "supervisor"]
secret_env = "BENCH_CONSOLE_SECRET"

[staff.agent-1]
roles = ["agent"]
teams = ["east"]
api_key_sha256 = "{_sha(KEYS['agent-1'])}"

[staff.sup]
roles = ["supervisor"]
api_key_sha256 = "{_sha(KEYS['sup'])}"

[staff.boss]
roles = []
api_key_sha256 = "{_sha(KEYS['boss'])}"
"""


def pages(case_id: str) -> dict[str, tuple[str, str]]:
    """name -> (who, path) of every page timed."""
    three_years = "from=2022-12-02&to=2025-12-01"
    return {
        "queue_mine": ("agent-1", "/console/queue"),
        "queue_team": ("agent-1", "/console/queue?scope=team"),
        "board": ("sup", "/console/board"),
        "dashboard_default": ("boss", "/console/dashboard"),
        "dashboard_3_years": ("boss", f"/console/dashboard?{three_years}"),
        "dashboard_3_years_weekly": ("boss", f"/console/dashboard?{three_years}&grain=week"),
        "drill_down_breached": ("boss", "/console/cases?figure=breached"),
        "drill_down_opened_3_years": ("boss", f"/console/cases?figure=opened&{three_years}"),
        "case_page": ("sup", f"/console/cases/{case_id}"),
        "whatif_form": ("boss", "/console/whatif"),
    }


async def _signed_in(app: Starlette, who: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    form = (await http.get("/console/signin")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    if csrf is None:
        raise RuntimeError("the sign-in page has no CSRF token")
    r = await http.post("/console/signin", data={"csrf": csrf.group(1), "credential": KEYS[who], "next": ""})
    if r.status_code != 303:
        raise RuntimeError(f"{who} could not sign in: {r.status_code}")
    return http


async def _time_pages(app: Starlette, case_id: str, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    clients = {who: await _signed_in(app, who) for who in KEYS}
    out, fastest = {}, {}
    try:
        for name, (who, path) in pages(case_id).items():
            await clients[who].get(path)  # untimed: the first request compiles the page's templates
            runs = []
            for _ in range(rounds):
                start = time.perf_counter()
                r = await clients[who].get(path)
                runs.append(time.perf_counter() - start)
                if r.status_code != 200:
                    raise RuntimeError(f"{path} answered {r.status_code}")
            out[name] = round(statistics.median(runs) * 1000, 1)
            fastest[name] = round(min(runs) * 1000, 1)
    finally:
        for http in clients.values():
            await http.aclose()
    return out, fastest


def console_pages(view: ReportView, store: CaseStore, case_id: str, rounds: int,
                  tmp: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Median and fastest ms of each console page over `rounds` requests (after one sign-in per person
    and one untimed request per page);
    `case_id`: a case of `store` (the case page)."""
    (tmp / "bench-principals.toml").write_text(REGISTRY)
    registry = load_registry(tmp / "bench-principals.toml", {"BENCH_CONSOLE_SECRET": SECRET})
    settings = Settings(principal="console", principal_secret=SECRET, console_managers=["boss"],
                        console_secure_cookie=False, console_session_secret="bench-session-secret-0123456789",
                        console_timezone=CONSOLE_ZONE)
    console = console_app(settings, store=store, view=view, registry=registry, now=lambda: NOW)
    app = Starlette(routes=[Mount("/console", app=console)])
    # Its own event loop, in a thread: bench.run calls this from inside its own loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _time_pages(app, case_id, rounds)).result()
