"""The HTML report renders in a real browser (headless Chromium) with its three charts."""

from __future__ import annotations

import re
import shutil
import subprocess

from casework.config import sqlite_env
from projections import html
from projections.runner import ReportProjection, open_view
from tests.conftest import sqlite_store
from tests.projections.history import write_history

BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_the_html_report_renders_its_charts_in_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed (apt-get install chromium; make test installs it)"
    store = sqlite_store(tmp_path / "events.db")
    write_history(store, cases=40)
    view = open_view(sqlite_env(tmp_path / "r.db"))
    ReportProjection(store, view).catch_up()
    page = tmp_path / "report.html"
    page.write_text(html.render(view))
    assert "<script" not in page.read_text() and "http" not in page.read_text()  # self-contained

    dom = subprocess.run([chromium, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    shot = subprocess.run([chromium, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                           f"--screenshot={tmp_path / 'report.png'}", "--window-size=1400,1000", page.as_uri()],
                          capture_output=True, text=True, timeout=120)

    for chart in ("chart-sla", "chart-backlog", "chart-satisfaction"):
        assert f'id="{chart}"' in dom, chart
    sla_svg = re.search(r'<svg id="chart-sla".*?</svg>', dom, re.S).group(0)
    assert sla_svg.count('class="bar"') >= 2  # one bar a month: the history spans two
    assert "target 82" in dom
    assert (tmp_path / "report.png").stat().st_size > 10_000, shot.stderr
