"""The console's what-if page: a supervisor pastes a draft policy and reads the side-by-side table;
its figures are those of casework/simulate.py (worked by hand in test_simulate.py); a broken draft
says what is wrong; an agent may not open the page."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from casework.policy import DEFAULT_POLICY
from casework.simulate import simulate
from tests.history.test_simulate import STRICT, small_history, store_at
from tests.web.console_env import KEYS
from tests.web.test_console_units import _app, _client, _sign_in


async def test_the_page_shows_the_simulation_side_by_side(tmp_path):
    store = store_at(tmp_path / "events.db")
    small_history(store)
    app, _ = _app((tmp_path, store, None, []))
    draft = DEFAULT_POLICY.read_text()
    for target in ("first_response_hours", "next_response_hours", "resolution_hours"):
        draft = re.sub(rf"^{target} = ([0-9.]+)$", lambda m: f"{target} = {float(m.group(1)) / 2:g}", draft, flags=re.M)
    draft = draft.replace('version = "default-2026.11"', 'version = "twice-as-strict"', 1)
    async with _client(app) as client:
        await _sign_in(client, KEYS["sup-sam"])
        page = await client.get("/whatif")
        assert page.status_code == 200 and 'version = "default-2026.11"' in html.unescape(page.text)  # the current policy to edit
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        answer = await client.post("/whatif", data={"csrf": csrf, "draft": draft, "until": "2026-03-31"})
        assert answer.status_code == 200, answer.text
        row = re.search(r'<tr data-group="priority" data-value="normal">(.*?)</tr>', answer.text, re.S).group(1)
        cells = re.findall(r"<td>(.*?)</td>", row)
        expected = next(r for r in simulate(store, STRICT, until=datetime(2026, 3, 31, tzinfo=UTC)).rows
                        if (r.group, r.value) == ("priority", "normal"))
        assert cells[2:] == [str(expected.cases), f"{expected.compliance_pct_current} %",
                             f"{expected.compliance_pct_draft} %", str(expected.breaches_current),
                             str(expected.breaches_draft), str(expected.escalations_current),
                             str(expected.escalations_draft)]
        assert cells[2:] == ["2", "50.0 %", "0.0 %", "1", "2", "1", "2"]  # worked by hand in test_simulate.py
        broken = await client.post("/whatif", data={"csrf": csrf, "draft": "version = "})
        assert broken.status_code == 200 and "does not parse" in html.unescape(broken.text) and "whatif-result" not in broken.text
        forged = await client.post("/whatif", data={"csrf": "forged", "draft": draft})
        assert forged.status_code == 403


async def test_agents_may_not_open_it(tmp_path):
    store = store_at(tmp_path / "events.db")
    app, _ = _app((tmp_path, store, None, []))
    async with _client(app) as client:
        await _sign_in(client, KEYS["agent-alice"])
        assert (await client.get("/whatif")).status_code == 403


async def test_its_dates_are_the_consoles_zone_unless_they_carry_an_offset(tmp_path):
    """The three cases open Mon 2 Mar 2026 09:00 Shanghai (01:00 UTC); the console shows Shanghai."""
    store = store_at(tmp_path / "events.db")
    small_history(store)
    app, _ = _app((tmp_path, store, None, []), console_timezone="Asia/Shanghai")
    async with _client(app) as client:
        await _sign_in(client, KEYS["sup-sam"])
        page = await client.get("/whatif")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

        async def cases(since: str = "", until: str = "2026-03-31") -> int | str:
            answer = await client.post("/whatif", data={"csrf": csrf, "draft": DEFAULT_POLICY.read_text(),
                                                        "since": since, "until": until},
                                       headers={"Accept-Language": "en"})
            assert answer.status_code == 200, answer.text
            if 'id="whatif-problem"' in answer.text:
                return re.search(r'id="whatif-problem">(.*?)</p>', answer.text).group(1)
            return int(re.search(r"(\d+) cases: pinned terms", answer.text).group(1))

        assert await cases(since="2026-03-02T09:00") == 3  # 09:00 in Shanghai: the cases' opening
        assert await cases(since="2026-03-02T09:00+08:00") == 3  # the same instant, offset given
        assert await cases(since="2026-03-02T09:00:01+08:00") == 0
        assert await cases(since="2026-03-02T01:00Z") == 3
        assert await cases(until="2026-03-02T09:00+08:00") == 0  # opened before it: none
        assert await cases(until="2026-03-02T09:00:01") == 3
        for bad in ("9999-12-31", "0001-01-01", "31/03/2026"):
            assert await cases(until=bad) == "A date is not valid; use the date picker.", bad
