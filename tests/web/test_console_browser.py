"""The console walked in a real browser (Debian's headless Chromium, driven by Playwright) against
the real engine: an agent works their queue and reads a case, a supervisor escalates and
acknowledges from the board, a manager reads the dashboard and follows a figure to its cases, a
Chinese browser gets Chinese pages, and every role is refused what it may not do.

Every page visited is screenshotted into the test artifacts (test-artifacts/console, or
$CASEWORK_TEST_ARTIFACTS/console) after checking its key elements are visible and the page is no
wider than the window. CASEWORK_DOCS_SCREENSHOTS=1 also refreshes docs/console/*.png."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import async_playwright

from casework.client import CaseworkClient
from domain.commands import (
    AddNote, ConfirmSolution, OpenCase, ProposeSolution, RecordCustomerReply, Respond, SurveyAnswer,
)
from domain.model import Actor, Role
from tests.conftest import sqlite_store
from tests.projections.history import figures_from_events, write_history
from tests.web.console_env import (
    ARTIFACTS, CHROMIUM, DOCS_SHOTS, KEYS, POLICY, Console, console_credential, crm_credential, free_port,
    mounted, new_view, registry_and_settings, serve,
)
from casework.web.console import console_app
from worker import build_worker

ZONE = ZoneInfo("Asia/Shanghai")  # the default policy's business calendar
ALICE = Actor(id="agent-alice", role=Role.agent)
CRM = Actor(id="crm", role=Role.system)
DOC_PAGES = {"queue", "case", "board", "dashboard", "drill-down", "dashboard-zh"}


def cid() -> str:
    return str(uuid.uuid4())


async def open_live(cases: CaseworkClient, customer: str, **fields) -> str:
    opening = OpenCase(command_id=cid(), actor=CRM, source={"system": "crm", "external_id": cid()},
                       customer={"id": customer, "name": f"Customer {customer}", "tier": "B"},
                       channel="phone", category="fault", **fields)
    return (await cases.open_case(opening)).case_id


@pytest.fixture(scope="module")
async def console(temporal_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    store = sqlite_store(tmp / "events.db")
    history = await asyncio.to_thread(write_history, store, 40)
    registry, settings = registry_and_settings(tmp)
    (tmp / "policy.toml").write_text(POLICY)
    task_queue = f"console-{uuid.uuid4()}"
    view = new_view(tmp / "reporting.db")
    async with build_worker(temporal_env.client, store, task_queue, policy_path=str(tmp / "policy.toml"),
                            registry=registry):
        crm = CaseworkClient(temporal_env.client, task_queue, credential=crm_credential())
        as_console = CaseworkClient(temporal_env.client, task_queue, credential=console_credential())
        env = Console("", store, view, crm, history)
        a = await open_live(crm, "c-live-1", priority="high", subject="Printer on floor 3 offline",
                            description="The floor 3 printer does not answer since Monday.",
                            assignee="agent-alice", team="east")
        await as_console.send(a, Respond(command_id=cid(), actor=ALICE, message="We are checking its network port."))
        await crm.send(a, RecordCustomerReply(command_id=cid(), actor=Actor(id="c-live-1", role=Role.customer),
                                              message="It is still offline after the restart."))
        await as_console.send(a, AddNote(command_id=cid(), actor=ALICE, text="Asked facilities to check the switch."))
        b = await open_live(crm, "c-live-2", priority="normal", subject="Invoice address wrong",
                            description="The invoice shows our old address.", assignee="agent-bob", team="west")
        done = await open_live(crm, "c-live-3", priority="normal", subject="Scanner jams",
                               description="The scanner jams on every second page.", assignee="agent-alice",
                               team="east")
        await as_console.send(done, ProposeSolution(command_id=cid(), actor=ALICE, summary="Replaced the roller."))
        await crm.send(done, ConfirmSolution(
            command_id=cid(), actor=Actor(id="c-live-3", role=Role.customer), comment="Works now",
            survey=SurveyAnswer(scale="1-5", scores={"response_speed": 5, "problem_solving": 4, "attitude": 5})))
        env.live = {"alice": a, "bob": b, "surveyed": done}
        await asyncio.to_thread(env.catch_up)
        port = free_port()
        server, task = await serve(mounted(console_app(settings, cases=as_console, store=store, view=view,
                                                       registry=registry)), port)
        env.url = f"http://127.0.0.1:{port}/console"
        try:
            yield env
        finally:
            server.should_exit = True
            await task


@pytest.fixture(scope="module")
async def browser():
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        await chromium.close()


async def new_page(browser, locale: str = "en-GB"):
    context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    return await context.new_page()


async def sign_in(page, console: Console, who: str) -> None:
    await page.goto(f"{console.url}/signin")
    await page.fill("#credential", KEYS[who])
    await page.click("#signin")
    await page.wait_for_load_state()


async def check_and_shoot(page, name: str, visible: list[str]) -> None:
    """Key elements visible, nothing wider than the window; then the screenshot, kept."""
    for selector in visible:
        assert await page.locator(selector).first.is_visible(), f"{name}: {selector} is not visible"
    width = await page.evaluate("document.documentElement.scrollWidth")
    window = await page.evaluate("window.innerWidth")
    assert width <= window, f"{name}: the page is {width}px wide in a {window}px window"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000, f"{name}: the screenshot is blank"
    if os.environ.get("CASEWORK_DOCS_SCREENSHOTS") == "1" and name in DOC_PAGES:
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, DOCS_SHOTS / f"{name}.png")


async def test_an_agent_works_their_queue_and_reads_a_case(console, browser):
    page = await new_page(browser)
    await sign_in(page, console, "agent-alice")
    assert page.url.endswith("/console/queue")
    a, b = console.live["alice"], console.live["bob"]
    assert await page.locator(f'#queue a[href$="/cases/{a}"]').count() == 1
    assert await page.locator(f'#queue a[href$="/cases/{b}"]').count() == 0  # bob's, in another team
    # Each case with its subject and customer (kept sealed in the store, opened for the page).
    mine = page.locator(f'#queue tr[data-case="{a}"]')
    assert await mine.locator("td.subject").inner_text() == "Printer on floor 3 offline"
    assert await mine.locator("td.customer").inner_text() == "Customer c-live-1 c-live-1"
    # An agent is shown no board or dashboard to go to (and is refused them: see the roles test).
    assert await page.locator("#nav-board").count() == 0 and await page.locator("#nav-dashboard").count() == 0
    await check_and_shoot(page, "queue", ["#queue", "#nav-queue", "#who", f'#queue tr[data-case="{a}"] td.subject'])

    await page.click("#scope-team")
    team_rows = await page.locator("#queue tbody tr").count()
    history_east = sum(1 for i in console.history_ids
                       if (s := console.store.state(i)).team == "east" and s.closed_at is None)
    assert team_rows == history_east + 1  # the team's open history cases and alice's live one
    subjects = await page.locator("#queue tbody tr td.subject").all_inner_texts()
    assert all(s and s != "—" for s in subjects) and "Printer on floor 3 offline" in subjects

    await page.goto(f"{console.url}/queue")
    await page.click(f'#queue a[href$="/cases/{a}"]')
    await page.wait_for_load_state()
    assert await page.locator("#case-title").inner_text() == "Printer on floor 3 offline"
    types = await page.locator("#conversation li.entry").evaluate_all("els => els.map(e => e.dataset.type)")
    assert types == ["CaseOpened", "ResponseSent", "CustomerReplied", "NoteAdded"]
    texts = await page.locator("#conversation li.entry .text").all_inner_texts()
    assert texts == ["The floor 3 printer does not answer since Monday.", "We are checking its network port.",
                     "It is still offline after the restart.", "Asked facilities to check the switch."]
    # Every clock's due time in the calendar's zone, to the minute, as the engine recorded it.
    state = console.store.state(a)
    shown = 0
    for name, clock in state.clocks.items():
        if clock.due is None:
            continue
        cell = page.locator(f'#clocks tr[data-clock="{name}"] td.due')
        expected = clock.due.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")
        assert expected != clock.due.strftime("%Y-%m-%d %H:%M")  # Shanghai is not UTC: the zone shows
        assert await cell.inner_text() == expected, name
        shown += 1
    assert shown >= 2  # first response (met) and the next response the customer's reply started
    remaining = await page.locator('#clocks tr[data-clock="next_response"] time.remaining').inner_text()
    assert re.fullmatch(r"(\d+ h )?\d+ min left", remaining), remaining
    assert await page.locator("#ladder li.current").inner_text() == "agent"
    await check_and_shoot(page, "case", ["#conversation", "#clocks", "#ladder", "#surveys", "form.act-note"])
    assert await page.locator("form.act-escalate").count() == 0  # an agent does not escalate
    await page.set_viewport_size({"width": 390, "height": 844})
    await check_and_shoot(page, "case-narrow", ["#conversation", "#clocks"])

    # A closed case with the customer's survey: each score as given, on the 0-100 scale.
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(f"{console.url}/cases/{console.live['surveyed']}")
    survey = console.store.state(console.live["surveyed"]).surveys[0]
    cells = await page.locator("#surveys tbody tr td").all_inner_texts()
    assert cells[0] == "1" and cells[1] == f"{survey.overall:g}"
    assert survey.overall == 91.7  # 1-5 mapped onto 0-100 (100, 75, 100), averaged, one decimal
    assert await page.locator("form.act").count() == 0  # nothing to do on a closed case
    assert "response speed 100" in cells[2] and "problem solving 75" in cells[2]
    texts = await page.locator("#conversation li.entry .text").all_inner_texts()
    assert texts.count("Works now") == 1  # the closing repeats the confirmation's comment: shown once
    await check_and_shoot(page, "case-surveyed", ["#surveys", "#conversation"])


async def test_a_supervisor_escalates_with_a_reason_and_sees_it_on_the_board(console, browser):
    page = await new_page(browser)
    await sign_in(page, console, "sup-sam")
    assert page.url.endswith("/console/board")
    b = console.live["bob"]
    row = page.locator(f'#at-risk tr[data-case="{b}"]')
    assert await row.count() == 1  # its first response is due within three hours
    assert re.search(r"\d+ min left", await row.locator("time.remaining").inner_text())
    await check_and_shoot(page, "board", ["#at-risk", "#breached", "#escalated", "#nav-dashboard"])

    await row.locator("details.acts summary").click()
    await row.locator('form.act-escalate input[name="reason"]').fill("Customer called twice today")
    await row.locator("form.act-escalate button").click()
    await page.wait_for_load_state()
    assert "Escalate" in await page.locator("#flash").inner_text()
    escalated = [e for e in console.store.history(b) if e.type == "CaseEscalated"]
    assert [(e.actor.id, e.actor.role.value, e.reason, e.level) for e in escalated] == [
        ("sup-sam", "supervisor", "Customer called twice today", 1)]

    await asyncio.to_thread(console.catch_up)
    await page.goto(f"{console.url}/board")
    listed = page.locator(f'#escalated tr[data-case="{b}"]')
    assert await listed.count() == 1
    assert "team_lead" in await listed.inner_text()
    await listed.locator("details.acts summary").click()
    await listed.locator('form.act-acknowledge input[name="reason"]').fill("Calling the customer back now")
    await listed.locator("form.act-acknowledge button").click()
    await page.wait_for_load_state()
    await asyncio.to_thread(console.catch_up)
    await page.goto(f"{console.url}/board")
    assert await page.locator(f'#escalated tr[data-case="{b}"] form.act-acknowledge').count() == 0

    # A reassignment from the board, with its reason.
    listed = page.locator(f'#escalated tr[data-case="{b}"]')
    await listed.locator("details.acts summary").click()
    form = listed.locator("form.act-reassign")
    await form.locator('input[name="team"]').fill("south")
    await form.locator('input[name="reason"]').fill("South team handles invoices")
    await form.locator("button").click()
    await page.wait_for_load_state()
    assert page.url.endswith("/console/board")
    assert console.store.state(b).team == "south"

    # The case page shows the ladder and the steps, each with the supervisor's words.
    await page.goto(f"{console.url}/cases/{b}")
    for action in ("escalate", "acknowledge", "de_escalate", "reassign"):
        assert await page.locator(f"form.act-{action}").count() == (0 if action == "acknowledge" else 1), action
    assert await page.locator("#ladder li.current").inner_text() != "agent"
    steps = await page.locator("#conversation li.entry-step .text").all_inner_texts()
    assert "Customer called twice today" in steps and "South team handles invoices" in steps
    # A reason is required: an empty one sends nothing.
    before = len(console.store.history(b))
    await page.locator('form.act-de_escalate input[name="reason"]').evaluate("e => e.removeAttribute('required')")
    await page.locator("form.act-de_escalate button").click()
    await page.wait_for_load_state()
    assert "reason" in (await page.locator("#flash").inner_text()).lower()
    assert len(console.store.history(b)) == before


def east_oracle(console: Console) -> tuple[set[str], int, int]:
    """From the raw events: the east team's cases that breached, and its FCR and closed counts."""
    east = [i for i in console.history_ids if console.store.history(i)[0].team == "east"]
    figures = figures_from_events(console.store, east)
    breached = {i for i in east if figures["breached"][i]}
    return breached, figures["fcr"], figures["closed"]


async def test_a_manager_reads_the_dashboard_and_follows_a_figure_to_its_cases(console, browser):
    page = await new_page(browser)
    await sign_in(page, console, "mia")
    assert page.url.endswith("/console/dashboard")
    await page.fill('input[name="from"]', "2026-01-01")
    await page.fill('input[name="to"]', "2026-04-30")
    await page.select_option('select[name="team"]', "east")
    await page.click("#apply")
    await page.wait_for_load_state()
    assert "team=east" in page.url
    # January and February had no cases: drawn as "no data", not as bars at 0 %.
    chart = page.locator("#chart-compliance")
    assert await chart.locator("text.nodata-label").count() == 2
    assert await chart.locator("rect.bar").count() == 2  # March and April, each with its value
    values = await chart.locator("text.value").all_text_contents()
    assert len(values) == 2 and all(v.endswith("%") for v in values)
    assert await page.locator("#chart-satisfaction line.target").count() == 1
    assert await page.locator("#trend td.nodata").count() == 2

    breached, fcr, closed = east_oracle(console)
    assert await page.locator('#figures a[data-figure="breached"] .value').inner_text() == str(len(breached))
    label = await page.locator('#figures a[data-figure="fcr"] .label').inner_text()
    assert f"({fcr} of {closed} closed)" in label
    await check_and_shoot(page, "dashboard", ["#filters", "#figures", "#chart-compliance", "#trend", "#teams",
                                              "#backlog"])

    # On a phone the page reflows (tables scroll inside their own box); it never runs off the screen.
    await page.set_viewport_size({"width": 390, "height": 844})
    await check_and_shoot(page, "dashboard-narrow", ["#figures", "#chart-compliance"])
    await page.set_viewport_size({"width": 1280, "height": 900})

    await page.click('#figures a[data-figure="breached"]')
    await page.wait_for_load_state()
    listed = set(await page.locator("#cases tbody tr").evaluate_all("els => els.map(e => e.dataset.case)"))
    assert listed == breached
    await check_and_shoot(page, "drill-down", ["#cases", "#case-count"])

    await page.locator("#cases a.case").first.click()
    await page.wait_for_load_state()
    assert await page.locator("#conversation").is_visible()
    assert await page.locator("form.act").count() == 0  # a manager reads, sends nothing


async def test_a_chinese_browser_gets_chinese_pages(console, browser):
    page = await new_page(browser, locale="zh-CN")
    await page.goto(f"{console.url}/signin")
    assert await page.locator("h1").inner_text() == "登录"
    assert await page.get_attribute("html", "lang") == "zh-CN"
    await sign_in(page, console, "mia")
    await page.goto(f"{console.url}/dashboard?from=2026-01-01&to=2026-04-30")
    assert await page.locator("h1").inner_text() == "经理仪表盘"
    assert "电话" in await page.locator('select[name="channel"]').inner_text()
    assert await page.locator("#chart-compliance text.nodata-label").all_text_contents() == ["无数据"] * 2  # Jan, Feb
    await check_and_shoot(page, "dashboard-zh", ["#figures", "#chart-compliance"])
    # The person's own choice outranks the browser's; the page keeps its filters.
    await page.select_option('header select[name="lang"]', "en")
    await page.click("header form.inline button")
    await page.wait_for_load_state()
    assert await page.locator("h1").inner_text() == "Manager's dashboard"
    assert await page.locator('input[name="from"]').input_value() == "2026-01-01"


async def test_each_role_is_refused_what_it_may_not_do(console, browser):
    a, b = console.live["alice"], console.live["bob"]
    page = await new_page(browser)
    response = await page.goto(f"{console.url}/queue")
    assert page.url.startswith(f"{console.url}/signin")  # not signed in: to the sign-in page
    await page.fill("#credential", "not-a-key")
    await page.click("#signin")
    await page.wait_for_load_state()
    assert "API key refused" in await page.locator("#signin-problem").inner_text()

    await sign_in(page, console, "agent-alice")
    for path in ("/board", "/dashboard", f"/cases/{b}"):
        response = await page.goto(console.url + path)
        assert response.status == 403, path
        assert await page.locator("#error h1").inner_text() == "Not allowed"
        assert "Traceback" not in await page.content()
    await check_and_shoot(page, "forbidden", ["#error"])

    await page.goto(f"{console.url}/cases/{a}")
    csrf = await page.locator('input[name="csrf"]').first.get_attribute("value")
    before = len(console.store.history(a))
    refused = await page.request.post(f"{console.url}/cases/{a}/act",
                                      form={"csrf": csrf, "action": "escalate", "reason": "I want to"})
    assert refused.status == 403 and "Not allowed" in await refused.text()
    no_token = await page.request.post(f"{console.url}/cases/{a}/act", form={"action": "note", "reason": "x"})
    assert no_token.status == 403
    assert len(console.store.history(a)) == before

    manager = await new_page(browser)
    await sign_in(manager, console, "mia")
    await manager.goto(f"{console.url}/cases/{b}")
    csrf = await manager.locator('input[name="csrf"]').first.get_attribute("value")
    before = len(console.store.history(b))
    for action in ("escalate", "note"):
        refused = await manager.request.post(f"{console.url}/cases/{b}/act",
                                             form={"csrf": csrf, "action": action, "reason": "Manager says so"})
        assert refused.status == 403, action
    assert len(console.store.history(b)) == before
    response = await manager.goto(f"{console.url}/queue")
    assert response.status == 403


def _minutes(text: str) -> int:
    """'2 h 05 min left' -> 125."""
    match = re.fullmatch(r"(?:(\d+) h )?(\d+) min left", text)
    assert match, text
    return int(match.group(1) or 0) * 60 + int(match.group(2))


async def test_time_remaining_counts_down_in_the_open_page(console, browser):
    """The page's script keeps the remaining time live (the browser's clock run forward 20 minutes)."""
    page = await new_page(browser)
    await page.clock.install()
    await sign_in(page, console, "agent-alice")
    await page.goto(f"{console.url}/cases/{console.live['alice']}")
    remaining = page.locator('#clocks tr[data-clock="next_response"] time.remaining')
    before = _minutes(await remaining.inner_text())
    await page.clock.run_for(20 * 60 * 1000)
    after = _minutes(await remaining.inner_text())
    assert before - after in (19, 20, 21), (before, after)
