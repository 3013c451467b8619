"""The console without a browser: catalogs, language choice, date ranges in the calendar's zone,
dashboard figures against the raw events, and sign-in and session rules over HTTP (ASGI)."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import jwt
import pytest
from babel import numbers
from babel.messages.pofile import read_po
from hypothesis import given, settings as examples, strategies as st
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from casework.config import ConfigError, Settings, sqlite_env
from casework.principals import load_registry
from casework.web.console import console_app, figures
from casework.web.console.app import query_string
from casework.web.console.i18n import CATALOGS, LANGUAGES, LOCALE_DIR, decimal, negotiate
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.projections.history import figures_from_events, p50, write_history
from tests.web.console_env import KEYS, REGISTRY, SECRETS, registry_and_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[2]


def _catalog_script():
    spec = importlib.util.spec_from_file_location("console_catalogs", ROOT / "scripts" / "console_catalogs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _po(lang: str):
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", text))


# ---------------------------------------------------------------- languages


def test_every_message_of_the_pages_is_in_both_catalogs_and_translated_to_chinese():
    messages = _catalog_script().extract()
    assert len(messages) > 150
    zh, en = _po("zh_CN"), _po("en")
    for message in messages:
        key = message if isinstance(message, str) else message[0]
        assert key in en, f"en catalog lacks {key!r} (run scripts/console_catalogs.py)"
        entry = zh[key]
        assert entry is not None, f"zh_CN catalog lacks {key!r} (run scripts/console_catalogs.py)"
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings), f"no Chinese for {key!r}"
        for s in strings:
            assert _placeholders(s) == _placeholders(key), f"{key!r}: placeholders differ in {s!r}"


def test_the_catalogs_compiled_at_import_say_what_the_po_files_say():
    for lang in ("zh_CN", "en"):
        for entry in _po(lang):
            if not entry.id or isinstance(entry.id, tuple):
                continue
            assert CATALOGS[lang].gettext(entry.id) == (entry.string or entry.id), entry.id
    assert CATALOGS["zh_CN"].gettext("Sign in") == "登录"
    assert CATALOGS["en"].gettext("needs_clarification") == "needs clarification"
    assert CATALOGS["zh_CN"].ngettext("%(num)s case", "%(num)s cases", 3) == "%(num)s 个工单"


@pytest.mark.parametrize("header, lang", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"), ("en-US,en;q=0.9,zh;q=0.8", "en"), ("fr-FR", "en"),
    ("fr;q=1, zh-TW;q=0.5", "zh_CN"), ("", "en"), (None, "en"), ("en;q=0.1, zh;q=0.9", "zh_CN"),
    ("zh;q=bad, en", "en"),
])
def test_the_language_comes_from_the_browsers_preferences(header, lang):
    assert negotiate(header) == lang


# ---------------------------------------------------------------- ranges and periods in the calendar's zone


@examples(max_examples=300, deadline=None)
@given(value=st.one_of(st.integers(-10**12, 10**12), st.floats(-1e12, 1e12, allow_nan=False)),
       digits=st.integers(0, 3), lang=st.sampled_from(LANGUAGES))
def test_numbers_read_as_babel_formats_them(value, digits, lang):
    """decimal() formats each value once with a pattern parsed once: babel's format_decimal is the oracle."""
    value = round(value, digits)
    assert decimal(value, lang) == numbers.format_decimal(value, locale=lang)
    assert decimal(value, lang) == numbers.format_decimal(value, locale=lang)  # a second time: remembered


@examples(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.one_of(st.text(max_size=20), st.integers()), max_size=6))
def test_page_links_are_encoded_as_urlencode_would(query):
    """query_string quotes each part once per process; urllib's urlencode is the oracle."""
    assert query_string(query) == urlencode(query)
    assert query_string(query) == urlencode(query)


def test_a_date_range_is_whole_days_of_the_calendars_zone():
    flt = figures.Filters(start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert flt.bounds(SHANGHAI) == ("2026-02-28T16:00:00.000000Z", "2026-03-31T16:00:00.000000Z")


def test_periods_are_iso_weeks_or_months_of_the_zone_with_empty_ones_kept():
    # 2026-01-01 is a Thursday, so ISO week 1 starts on Monday 2025-12-29 and week 9 on 2026-02-23.
    weeks = figures.Filters(start=date(2026, 2, 25), end=date(2026, 3, 10), grain="week")
    assert figures.periods(weeks) == ["2026-W09", "2026-W10", "2026-W11"]
    months = figures.Filters(start=date(2026, 1, 15), end=date(2026, 4, 1))
    assert figures.periods(months) == ["2026-01", "2026-02", "2026-03", "2026-04"]
    # 16:30 UTC on 28 February is half past midnight on 1 March in Shanghai.
    assert figures.period_of("2026-02-28T16:30:00.000000Z", "month", SHANGHAI) == "2026-03"
    assert figures.period_of("2026-02-28T16:30:00.000000Z", "month", ZoneInfo("UTC")) == "2026-02"


# ---------------------------------------------------------------- figures against the raw events


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-units")
    store = sqlite_store(tmp / "events.db")
    ids = write_history(store, cases=40)
    view = open_view(sqlite_env(tmp / "reporting.db"))
    ReportProjection(store, view).catch_up()
    return tmp, store, view, ids


def test_the_dashboards_figures_match_the_events(history):
    _, store, view, ids = history
    oracle = figures_from_events(store, ids)
    flt = figures.Filters(start=date(2026, 3, 1), end=date(2026, 4, 30), grain="week")
    now = datetime(2026, 5, 1, tzinfo=UTC)
    d = figures.dashboard(view, flt, SHANGHAI, now)
    n = d.total["n"]
    assert n["opened"] == 40
    assert n["closed"] == oracle["closed"]
    assert n["fcr"] == oracle["fcr"]
    assert n["reopened"] == oracle["reopened_cases"]
    assert {r["case_id"] for r in figures.drill_down(view, flt, SHANGHAI, now, "breached").rows} == {
        i for i in ids if oracle["breached"][i]}
    assert n["open"] == sum(1 for i in ids if oracle["stage"][i] != "closed")
    hours = [h for values in oracle["first_response_hours"].values() for h in values]
    assert d.total["first_response_h"]["p50"] == pytest.approx(p50(hours))
    # Cases per ISO week of Shanghai, counted from the CaseOpened events.
    weeks = Counter()
    for i in ids:
        year, week, _ = store.history(i)[0].at.astimezone(SHANGHAI).isocalendar()
        weeks[f"{year}-W{week:02d}"] += 1
    assert {p: s["n"]["opened"] for p, s in d.trend if s} == dict(weeks)
    assert all(s is None for p, s in d.trend if p not in weeks)  # no case: no data, not zero
    # Drill-downs of a period add up to the figure.
    assert sum(len(figures.drill_down(view, flt, SHANGHAI, now, "opened", period=p).rows) for p, _ in d.trend) == 40


def test_a_team_filter_keeps_only_that_teams_cases(history):
    _, store, view, ids = history
    flt = figures.Filters(start=date(2026, 3, 1), end=date(2026, 4, 30), team="west")
    west = {i for i in ids if store.history(i)[0].team == "west"}
    rows = figures.drill_down(view, flt, SHANGHAI, datetime(2026, 5, 1, tzinfo=UTC), "opened").rows
    assert {r["case_id"] for r in rows} == west and west


# ---------------------------------------------------------------- sign-in and sessions over HTTP


def _client(app, base_url: str = "http://console.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


async def _sign_in(client: httpx.AsyncClient, credential: str, next_: str = "") -> httpx.Response:
    page = await client.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return await client.post("/signin", data={"csrf": csrf, "credential": credential, "next": next_})


def _app(history, **overrides):
    tmp, store, view, _ = history
    registry, settings = registry_and_settings(tmp)
    settings = settings.model_copy(update=overrides)
    return console_app(settings, store=store, view=view, registry=registry), settings


async def test_the_session_cookie_is_http_only_strict_and_secure_by_default(history):
    app, _ = _app(history, console_secure_cookie=True)
    async with _client(app, "http://console.test") as plain:  # a Secure cookie does not come back over HTTP
        assert (await _sign_in(plain, KEYS["sup-sam"])).status_code == 403
    async with _client(app, "https://console.test") as client:
        response = await _sign_in(client, KEYS["sup-sam"])
    cookie = response.headers["set-cookie"].lower()
    assert response.status_code == 303 and response.headers["location"] == "/board"
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie


async def test_sign_in_follows_only_paths_of_the_console(history):
    app, _ = _app(history)
    for evil in ("https://evil.example/x", "//evil.example/x"):
        async with _client(app) as client:
            response = await _sign_in(client, KEYS["sup-sam"], next_=evil)
            assert response.headers["location"] == "/board", evil
    async with _client(app) as client:
        response = await _sign_in(client, KEYS["sup-sam"], next_="/dashboard")
        assert response.headers["location"] == "/dashboard"


async def test_services_and_unknown_keys_cannot_sign_in(history):
    tmp, store, view, _ = history
    registry, settings = registry_and_settings(tmp)
    crm_key = "crm-api-key-0123456789"
    text = REGISTRY.replace('secret_env = "CRM_SECRET"',
                            f'secret_env = "CRM_SECRET"\napi_key_sha256 = "{hashlib.sha256(crm_key.encode()).hexdigest()}"')
    (tmp / "with-crm-key.toml").write_text(text)
    registry = load_registry(tmp / "with-crm-key.toml", {"CONSOLE_SECRET": SECRETS["console"],
                                                         "CRM_SECRET": SECRETS["crm"]})
    app = console_app(settings, store=store, view=view, registry=registry)
    async with _client(app) as client:
        refused = await _sign_in(client, crm_key)
        assert refused.status_code == 401 and "for staff" in refused.text
        unknown = await _sign_in(client, "no-such-key")
        assert unknown.status_code == 401 and "API key refused" in unknown.text
        assert (await client.get("/queue")).headers["location"].startswith("/signin")


async def test_someone_taken_out_of_the_registry_is_out_at_the_next_click(history):
    tmp, store, view, _ = history
    registry, settings = registry_and_settings(tmp)
    app = console_app(settings, store=store, view=view, registry=registry)
    sections = REGISTRY.split("\n[")
    (tmp / "without-alice.toml").write_text("\n[".join(p for p in sections if not p.startswith("staff.agent-alice]")))
    smaller = load_registry(tmp / "without-alice.toml", {"CONSOLE_SECRET": SECRETS["console"],
                                                        "CRM_SECRET": SECRETS["crm"]})
    later = console_app(settings, store=store, view=view, registry=smaller)  # same session secret
    async with _client(app) as client:
        await _sign_in(client, KEYS["agent-alice"])
        assert (await client.get("/queue")).status_code == 200
        async with _client(later) as after:
            after.cookies = client.cookies  # the same browser, its session cookie still valid
            response = await after.get("/queue")
            assert response.status_code == 303 and response.headers["location"].startswith("/signin")


async def test_a_bearer_token_from_the_identity_provider_signs_in(history):
    tmp = history[0]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp / "idp.pem").write_bytes(pem)
    app, _ = _app(history, jwt_public_key_file=str(tmp / "idp.pem"), jwt_issuer="https://idp.test/",
                  jwt_audience="casework")
    now = int(time.time())
    token = jwt.encode({"sub": "sup-sam", "casework_role": "supervisor", "iss": "https://idp.test/",
                        "aud": "casework", "iat": now, "exp": now + 300}, key, algorithm="RS256")
    async with _client(app) as client:
        response = await _sign_in(client, token)
        assert response.headers["location"] == "/board"
        assert (await client.get("/board")).status_code == 200
        forged = jwt.encode({"sub": "sup-sam", "casework_role": "supervisor", "iss": "https://idp.test/",
                             "aud": "casework", "iat": now, "exp": now + 300},
                            rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256")
    async with _client(app) as other:
        assert (await _sign_in(other, forged)).status_code == 401


async def test_errors_are_pages_not_tracebacks(history):
    app, _ = _app(history)
    async with _client(app) as client:
        await _sign_in(client, KEYS["mia"])
        missing = await client.get("/cases/no-such-case")
        assert missing.status_code == 404 and "Not found" in missing.text
        unknown = await client.get("/cases?figure=nonsense")
        assert unknown.status_code == 404
        bad = await client.get("/dashboard?from=yesterday")
        assert bad.status_code == 200 and "was not understood" in bad.text
        no_token = await client.post("/signout", data={})
        assert no_token.status_code == 403 and "Traceback" not in no_token.text
        for response in (missing, unknown, bad, no_token):
            assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_console_needs_a_registry_and_a_credential_of_its_own(history):
    tmp, store, view, _ = history
    registry, settings = registry_and_settings(tmp)
    with pytest.raises(ConfigError, match="principal registry"):
        console_app(Settings(principal="console", principal_secret="x"), store=store, view=view)
    with pytest.raises(ConfigError, match="CASEWORK_PRINCIPAL"):
        console_app(settings.model_copy(update={"principal": ""}), store=store, view=view, registry=registry)
    with pytest.raises(ConfigError, match="console_timezone"):
        console_app(settings.model_copy(update={"console_timezone": "Mars/Olympus"}), store=store, view=view,
                    registry=registry)


async def test_an_unexpected_failure_is_a_page_and_a_log_line_not_a_traceback(history, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("reporting database unreachable")

    monkeypatch.setattr(figures, "board", broken)
    app, _ = _app(history)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        await _sign_in(client, KEYS["sup-sam"])
        response = await client.get("/board")
    assert response.status_code == 500 and "Something went wrong" in response.text
    assert "Traceback" not in response.text and "unreachable" not in response.text


async def test_a_form_sent_after_the_session_ended_leads_back_to_its_case_after_signing_in(history):
    app, _ = _app(history)
    async with _client(app) as client:
        response = await client.post("/cases/abc/act", data={"action": "note", "reason": "x"})
        assert response.status_code == 303 and response.headers["location"] == "/signin?next=%2Fcases%2Fabc"
        signed = await _sign_in(client, KEYS["sup-sam"], next_="/cases/abc")
        assert signed.headers["location"] == "/cases/abc"


def test_the_consoles_queries_read_the_same_on_postgresql(history, postgres_server):
    """The same history projected into PostgreSQL gives every page the same rows as SQLite."""
    import uuid

    from tests.pg import create_database

    _, store, sqlite_view, ids = history
    name = f"console_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server, name)
    pg_view = open_view({"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": name,
                         "POSTGRES_HOST": postgres_server["host"], "POSTGRES_PORT": postgres_server["port"],
                         "POSTGRES_USER": postgres_server["user"], "POSTGRES_PASSWORD": postgres_server["password"],
                         "POSTGRES_SCHEMA": "reporting"})
    ReportProjection(store, pg_view).catch_up()
    now = datetime(2026, 4, 20, tzinfo=UTC)
    flt = figures.Filters(start=date(2026, 3, 1), end=date(2026, 4, 30), grain="week", channel="phone")

    def pages(view):
        return (figures.queue(view, teams=("east", "west")), figures.board(view, now),
                figures.dashboard(view, flt, SHANGHAI, now), figures.choices(view, SHANGHAI),
                figures.drill_down(view, flt, SHANGHAI, now, "breached"))

    on_sqlite, on_pg = pages(sqlite_view), pages(pg_view)
    assert on_sqlite[0].rows and on_sqlite[1].escalated.rows and on_sqlite[2].rows  # not comparing empty pages
    assert on_pg == on_sqlite


def test_cases_without_a_team_are_one_row_of_the_comparison_and_its_link_finds_them(tmp_path):
    from casework.policy import load_policy
    from domain.commands import OpenCase
    from domain.lifecycle import decide
    from domain.model import Actor, Role

    opening = OpenCase(command_id="no-team-1", actor=Actor(id="gateway", role=Role.system), case_id="no-team-case",
                       channel="web", category="enquiry", subject="Opening hours?",
                       customer={"id": "c-nt", "name": "Customer nt", "tier": "C"})
    own = sqlite_store(tmp_path / "events.db")
    at = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    terms = load_policy().terms_for(opening.priority, opening.customer.tier, opening.category, opening.channel)
    own.append(opening.command_id, decide(None, opening, at, terms))
    view = open_view(sqlite_env(tmp_path / "reporting.db"))
    ReportProjection(own, view).catch_up()
    flt = figures.Filters(start=date(2026, 3, 1), end=date(2026, 3, 31))
    d = figures.dashboard(view, flt, SHANGHAI, datetime(2026, 4, 1, tzinfo=UTC))
    assert [team for team, _ in d.teams] == ["-"]
    only = figures.Filters(start=flt.start, end=flt.end, team="-")
    assert [r["case_id"] for r in figures.drill_down(view, only, SHANGHAI, datetime(2026, 4, 1, tzinfo=UTC),
                                                     "opened").rows] == ["no-team-case"]


@pytest.mark.parametrize("page", ["/dashboard", "/cases?figure=opened"])
async def test_date_ranges_at_the_calendars_edges_are_notices_not_failures(history, page):
    app, _ = _app(history, console_timezone="Asia/Shanghai")
    sep = "&" if "?" in page else "?"
    async with _client(app) as client:
        await _sign_in(client, KEYS["sup-sam"])
        # Four years ending on a leap day: the start moves back three years, to 28 February (2025 has no 29th).
        long = await client.get(f"{page}{sep}from=2020-01-01&to=2028-02-29", headers={"Accept-Language": "en"})
        assert long.status_code == 200, long.text
        assert "Ranges are at most three years; the start was moved." in long.text
        assert "from=2025-02-28&amp;to=2028-02-29" in long.text  # the links carry the range it shows
        for start, end in [("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31"), ("1899-12-31", "2026-01-01"),
                           ("2026-01-01", "9999-01-01")]:
            edge = await client.get(f"{page}{sep}from={start}&to={end}", headers={"Accept-Language": "en"})
            assert edge.status_code == 200, (start, end, edge.text)
            assert "A date was not understood (use YYYY-MM-DD); showing the default range." in edge.text
            # The default range instead, in the form and the links (the language form keeps the address as sent).
            assert f'name="from" value="{start}"' not in edge.text and f'href="/dashboard?from={start}' not in edge.text
        widest = await client.get(f"{page}{sep}from=1900-01-01&to=1900-12-31", headers={"Accept-Language": "en"})
        assert widest.status_code == 200 and "flash error" not in widest.text


def test_years_before_and_form_instants_in_the_consoles_zone():
    assert figures.years_before(date(2028, 2, 29), 3) == date(2025, 2, 28)
    assert figures.years_before(date(2028, 2, 29), 4) == date(2024, 2, 29)
    assert figures.years_before(date(2026, 3, 1), 3) == date(2023, 3, 1)
    # A day or a zoneless time is the console's; an instant with its offset is that instant.
    assert figures.form_instant("2026-03-02", SHANGHAI) == datetime(2026, 3, 1, 16, tzinfo=UTC)
    assert figures.form_instant("2026-03-02T09:00", SHANGHAI) == datetime(2026, 3, 2, 1, tzinfo=UTC)
    assert figures.form_instant("2026-03-02T09:00+02:00", SHANGHAI) == datetime(2026, 3, 2, 7, tzinfo=UTC)
    for text in ("9999-12-31", "0001-01-01", "tomorrow"):
        with pytest.raises(ValueError):
            figures.form_instant(text, SHANGHAI)


# ---------------------------------------------------------------- long lists, a page at a time


def _case_rows(html: str, table: str) -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-case="([^"]+)"', body)


async def _walk(client: httpx.AsyncClient, path: str, table: str) -> tuple[list[str], int, str]:
    """Every row of a paged list, following its "next page" links; (rows, pages, first page)."""
    seen, pages, first = [], 0, ""
    while path:
        page = await client.get(path)
        assert page.status_code == 200, path
        first = first or page.text
        seen += _case_rows(page.text, table)
        pages += 1
        more = re.search(r'id="page-next" href="([^"]+)"', page.text)
        path = more.group(1).replace("&amp;", "&") if more else ""
    return seen, pages, first


async def test_queues_and_drill_downs_are_read_a_page_at_a_time_through_their_links(history, monkeypatch):
    _, _, view, ids = history
    monkeypatch.setattr(figures, "QUEUE_PAGE", 2)
    monkeypatch.setattr(figures, "DRILL_PAGE", 7)
    monkeypatch.setattr(figures, "BOARD_ROWS", 1)
    app, _ = _app(history)
    async with _client(app) as client:
        await _sign_in(client, KEYS["agent-alice"])
        team = [r["case_id"] for r in figures.queue(view, teams=("east",), limit=1000).rows]
        rows, pages, first = await _walk(client, "/queue?scope=team", "queue")
        assert rows == team and pages == (len(team) + 1) // 2 and len(team) > 2
        assert f"1–2 of {len(team)}" in first
    async with _client(app) as client:
        await _sign_in(client, KEYS["mia"])
        rows, pages, first = await _walk(client, "/cases?figure=opened&from=2026-03-01&to=2026-04-30", "cases")
        assert sorted(rows) == sorted(ids) and len(rows) == 40 and pages == 6  # 40 cases, 7 a page
        assert '40 cases' in first and "1–7 of 40" in first
    async with _client(app) as client:
        await _sign_in(client, KEYS["sup-sam"])
        board = (await client.get("/board")).text
        escalated = figures.board(view, datetime.now(UTC), limit=1).escalated
        assert escalated.total > 1 and _case_rows(board, "escalated") == [escalated.rows[0]["case_id"]]
        assert f"The first 1 of {escalated.total}." in board
