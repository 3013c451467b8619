"""The console's figures and lists (counted and paged in SQL) and the bounded reports, against a
naive oracle over the same rows: every case fetched, each test applied in Python, periods from
the opened instant converted to the zone, percentiles by statistics.quantiles. On SQLite and on
PostgreSQL, over the report benchmark's synthetic read models (bench/synthetic.py: 2,000 cases
over 700 days, three teams, four channels, breaches, surveys, open cases with running clocks)."""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from statistics import quantiles
from zoneinfo import ZoneInfo

import pytest

from bench.synthetic import write_read_models
from casework.config import sqlite_env
from casework.web.console import figures
from projections import dashboard, reports
from projections.runner import ReportProjection, open_view, rebuild
from tests.pg import create_database
from tests.projections.history import write_history
from tests.projections.test_read_models import backend  # noqa: F401 - the (store, reporting env) fixture

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHONGQING = ZoneInfo("Asia/Chongqing")  # Shanghai's rules under another name: days not kept in it
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2025, 6, 1, 5, 30, tzinfo=UTC)
TARGET = 82


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def view(request, tmp_path_factory):
    if request.param == "sqlite":
        v = open_view(sqlite_env(tmp_path_factory.mktemp("oracle") / "reporting.db"))
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"oracle_{uuid.uuid4().hex[:10]}"
        create_database(server, name)
        v = open_view({"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": name,
                       "POSTGRES_HOST": server["host"], "POSTGRES_PORT": server["port"],
                       "POSTGRES_USER": server["user"], "POSTGRES_PASSWORD": server["password"],
                       "POSTGRES_SCHEMA": "reporting"})
    write_read_models(v, target_events=40_000)
    with v.datastore.transaction(commit=True) as c:  # a few cases without a team: their own row
        c.execute(v.sql(f"UPDATE {v.table('cases')} SET team = NULL WHERE external_id IN (?, ?, ?)"), ["3", "4", "5"])
    dashboard.keep(v, SHANGHAI.key)  # the days in the console's zone, as the projection keeps them
    return v


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _all(view) -> tuple[list[dict], dict[str, list[dict]]]:
    cases = view.query("SELECT * FROM {cases}")
    clocks: dict = defaultdict(list)
    for k in view.query("SELECT * FROM {sla_clocks}"):
        clocks[k["case_id"]].append(k)
    return cases, clocks


# ---------------------------------------------------------------- the oracle


def _breached(r: dict) -> int:
    return r["first_response_breached"] + r["next_response_breached"] + r["resolution_breached"]


def _age(r: dict, now: datetime) -> str:
    age = now - _at(r["opened_at"])
    for limit, name in ((timedelta(days=1), "<1d"), (timedelta(days=3), "1-3d"), (timedelta(days=7), "3-7d"),
                        (timedelta(days=30), "7-30d")):
        if age < limit:
            return name
    return ">30d"


TESTS = {
    "opened": lambda r: True,
    "sla_held": lambda r: r["sla_policy_version"] is not None,
    "sla_met": lambda r: r["sla_policy_version"] is not None and not _breached(r),
    "breached": lambda r: r["sla_policy_version"] is not None and _breached(r) > 0,
    "responded": lambda r: r["first_response_seconds"] is not None,
    "resolved": lambda r: r["resolution_seconds"] is not None,
    "closed": lambda r: r["closed_at"] is not None,
    "fcr": lambda r: r["closed_at"] is not None and r["first_contact_resolution"] == 1,
    "reopened": lambda r: r["closed_at"] is not None and r["reopen_count"] > 0,
    "surveyed": lambda r: r["satisfaction_score"] is not None,
    "below_target": lambda r: r["satisfaction_score"] is not None and r["satisfaction_score"] < TARGET,
    "open": lambda r: r["closed_at"] is None,
}


def _test(figure: str, now: datetime):
    if figure.startswith("age:"):
        return lambda r: r["closed_at"] is None and _age(r, now) == figure[4:]
    return TESTS[figure]


def _in_range(cases: list[dict], flt: figures.Filters, zone: ZoneInfo) -> list[dict]:
    lo = datetime.combine(flt.start, time(), zone)
    hi = datetime.combine(flt.end + timedelta(days=1), time(), zone)
    return sorted((r for r in cases if lo <= _at(r["opened_at"]) < hi
                   and (not flt.team or (r["team"] or "-") == flt.team)
                   and (not flt.channel or r["channel"] == flt.channel)),
                  key=lambda r: (r["opened_at"], r["case_id"]))


def _period(r: dict, grain: str, zone: ZoneInfo) -> str:
    local = _at(r["opened_at"]).astimezone(zone)
    if grain == "week":
        return "%d-W%02d" % local.isocalendar()[:2]
    return "%d-%02d" % (local.year, local.month)


def _cuts(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p90": None, "p95": None}
    if len(values) == 1:
        return {"p50": values[0], "p90": values[0], "p95": values[0]}
    q = quantiles(values, n=100, method="inclusive")
    return {"p50": q[49], "p90": q[89], "p95": q[94]}


def _pct(a: int, b: int):
    return None if b == 0 else round(100.0 * a / b, 1)


def _summary(rows: list[dict]) -> dict:
    n = {name: sum(1 for r in rows if test(r)) for name, test in TESTS.items()}
    scores = [r["satisfaction_score"] for r in rows if r["satisfaction_score"] is not None]
    return {"n": n, "compliance_pct": _pct(n["sla_met"], n["sla_held"]), "fcr_pct": _pct(n["fcr"], n["closed"]),
            "reopen_pct": _pct(n["reopened"], n["closed"]),
            "first_response_h": _cuts([r["first_response_seconds"] / 3600 for r in rows
                                       if r["first_response_seconds"] is not None]),
            "resolution_h": _cuts([r["resolution_seconds"] / 3600 for r in rows if r["resolution_seconds"] is not None]),
            # The exact sum, rounded once (math.fsum): so in whatever order the cases are summed.
            "satisfaction": round(math.fsum(scores) / len(scores), 1) if scores else None, "target": TARGET}


def _same_summary(got: dict, want: dict) -> None:
    assert got == want


# ---------------------------------------------------------------- the tests

RANGES = [figures.Filters(start=date(2024, 1, 1), end=date(2025, 12, 31)),  # every case, by month
          figures.Filters(start=date(2024, 11, 20), end=date(2025, 3, 2), grain="week"),
          figures.Filters(start=date(2024, 2, 1), end=date(2024, 9, 30), team="west", channel="email"),
          figures.Filters(start=date(2024, 1, 1), end=date(2025, 12, 31), team="-")]


@pytest.mark.parametrize("zone", [SHANGHAI, CHONGQING], ids=["days-kept", "cases-counted"])
@pytest.mark.parametrize("flt", RANGES, ids=["all-monthly", "weekly", "west-email", "no-team"])
def test_the_dashboard_equals_the_oracle_over_every_case(view, flt, zone):
    """In the zone the days are kept in, summed from them; in another, counted over the cases."""
    rows = _in_range(_all(view)[0], flt, zone)
    assert len(rows) > 2 and any(r["closed_at"] is None for r in rows) or flt.team == "-"
    assert_dashboard_equals_the_oracle(view, flt, zone, NOW, from_days=zone is SHANGHAI)


def assert_dashboard_equals_the_oracle(view, flt: figures.Filters, zone: ZoneInfo, now: datetime,
                                       from_days: bool) -> None:
    SHANGHAI = zone  # noqa: N806 - the oracle below in the zone asked for
    NOW = now  # noqa: N806
    cases, _ = _all(view)
    rows = _in_range(cases, flt, SHANGHAI)
    d = figures.dashboard(view, flt, SHANGHAI, NOW)
    assert d.from_days is from_days
    assert d.rows == len(rows)
    _same_summary(d.total, _summary(rows))
    by_period: dict = defaultdict(list)
    by_team: dict = defaultdict(list)
    for r in rows:
        by_period[_period(r, flt.grain, SHANGHAI)].append(r)
        by_team[r["team"] or "-"].append(r)
    assert [p for p, _ in d.trend] == figures.periods(flt)
    for p, s in d.trend:
        if p in by_period:
            _same_summary(s, _summary(by_period[p]))
        else:
            assert s is None
    assert [t for t, _ in d.teams] == sorted(by_team)
    for t, s in d.teams:
        _same_summary(s, _summary(by_team[t]))
    assert d.backlog == {b: sum(1 for r in rows if r["closed_at"] is None and _age(r, NOW) == b)
                         for b in figures.AGE_BUCKETS}


def _every_page(fetch, size: int) -> tuple[list[str], set[int]]:
    ids, totals, offset = [], set(), 0
    while True:
        page = fetch(size, offset)
        totals.add(page.total)
        ids += [r["case_id"] for r in page.rows]
        offset += size
        if not page.more:
            return ids, totals


@pytest.mark.parametrize("figure", [*TESTS, *(f"age:{b}" for b in figures.AGE_BUCKETS)])
def test_every_drill_down_page_by_page_equals_the_oracle(view, figure):
    cases, _ = _all(view)
    flt = RANGES[1]
    rows = [r for r in _in_range(cases, flt, SHANGHAI) if _test(figure, NOW)(r)]
    ids, totals = _every_page(lambda size, offset: figures.drill_down(
        view, flt, SHANGHAI, NOW, figure, limit=size, offset=offset), 17)
    assert ids == [r["case_id"] for r in rows] and totals == {len(rows)}
    week = figures.periods(flt)[3]
    want = [r["case_id"] for r in rows if _period(r, "week", SHANGHAI) == week and r["team"] == "east"]
    page = figures.drill_down(view, flt, SHANGHAI, NOW, figure, period=week, team="east", limit=1000)
    assert [r["case_id"] for r in page.rows] == want and page.total == len(want)


def test_a_drill_down_of_a_period_the_range_lacks_is_empty(view):
    page = figures.drill_down(view, RANGES[1], SHANGHAI, NOW, "opened", period="1999-W01")
    assert page.rows == [] and page.total == 0
    assert figures.drill_down(view, RANGES[1], SHANGHAI, NOW, "no-such-figure") is None


def _next_due(clocks: list[dict]) -> str | None:
    dues = [k["due"] for k in clocks if k["state"] == "running" and k["due"] is not None]
    return min(dues) if dues else None


@pytest.mark.parametrize("who", [{"assignee": "agent-7"}, {"teams": ("east", "north")}])
def test_a_queue_page_by_page_equals_the_oracle(view, who):
    cases, clocks = _all(view)
    mine = [r for r in cases if r["closed_at"] is None and (
        r["assignee"] == who["assignee"] if "assignee" in who else r["team"] in who["teams"])]
    mine.sort(key=lambda r: (_next_due(clocks[r["case_id"]]) is None, _next_due(clocks[r["case_id"]]) or "",
                             r["opened_at"], r["case_id"]))
    ids, totals = _every_page(lambda size, offset: figures.queue(view, **who, limit=size, offset=offset), 9)
    assert ids == [r["case_id"] for r in mine] and totals == {len(mine)} and len(mine) > (9 if "teams" in who else 0)


def _at_risk_oracle(cases, clocks, now: datetime, within: timedelta, overdue: bool = True) -> list[tuple]:
    open_ids = {r["case_id"] for r in cases if r["closed_at"] is None}
    due_by = now + within
    found = [k for ks in clocks.values() for k in ks if k["state"] == "running" and k["case_id"] in open_ids
             and _at(k["due"]) <= due_by and (overdue or _at(k["due"]) > now)]
    return sorted((k["due"], k["case_id"], k["clock"]) for k in found)


def test_at_risk_pages_add_up_to_the_whole_list_and_the_oracle(view):
    cases, clocks = _all(view)
    within = timedelta(days=200)
    want = _at_risk_oracle(cases, clocks, NOW, within)
    assert len(want) > 30
    whole = reports.at_risk(view, within, NOW)
    assert [(r["due"], r["case_id"], r["clock"]) for r in whole] == want
    pages, offset = [], 0
    while offset < len(want) + 7:
        page = reports.at_risk_page(view, within, NOW, limit=7, offset=offset)
        assert page.total == len(want)
        pages += page.rows
        offset += 7
    assert pages == whole
    assert reports.at_risk_page(view, within, NOW, limit=0).rows == []
    with pytest.raises(ValueError):
        reports.at_risk_page(view, within, NOW, offset=-1)


def test_the_board_shows_the_first_of_each_section_and_counts_them_all(view):
    cases, clocks = _all(view)
    # A moment at which some clocks are due within the board's four hours (not yet past due).
    running = sorted(k["due"] for ks in clocks.values() for k in ks if k["state"] == "running")
    now = _at(running[len(running) // 2]) - timedelta(hours=1)
    b = figures.board(view, now, limit=3)
    risky = _at_risk_oracle(cases, clocks, now, figures.AT_RISK_WITHIN, overdue=False)
    assert [(r["due"], r["case_id"], r["clock"]) for r in b.at_risk.rows] == risky[:3]
    assert b.at_risk.total == len(risky) and risky
    open_cases = sorted((r for r in cases if r["closed_at"] is None), key=lambda r: (r["opened_at"], r["case_id"]))
    breached = [r for r in open_cases if _breached(r) > 0]
    escalated = [r for r in open_cases if r["escalation_level"] > 0]
    assert [r["case_id"] for r in b.breached.rows] == [r["case_id"] for r in breached[:3]]
    assert [r["case_id"] for r in b.escalated.rows] == [r["case_id"] for r in escalated[:3]]
    assert (b.breached.total, b.escalated.total) == (len(breached), len(escalated))
    assert b.breached.more and b.escalated.more


def test_the_times_report_equals_python_quantiles_over_the_synthetic_rows(view):
    """The PostgreSQL statement (ordered-set aggregates) and SQLite's ranks, against quantiles."""
    cases, _ = _all(view)
    for by, column in (("priority", "priority"), ("team", "team"), ("channel", "channel")):
        groups: dict = defaultdict(list)
        for r in cases:
            groups[r[column]].append(r)
        want = []
        for grp, items in sorted(groups.items(), key=lambda kv: str(kv[0])):
            row = {by: grp, "cases": len(items)}
            for col in reports.DURATIONS:
                cuts = _cuts([i[col] for i in items if i[col] is not None])
                for p in (50, 90, 95):
                    value = cuts[f"p{p}"]
                    row[f"{col.replace('_seconds', '_hours')}_p{p}"] = None if value is None else round(value / 3600, 2)
            want.append(row)
        assert reports.response_times(view, by) == want, by


# ---------------------------------------------------------------- the days the projection keeps


def days_of_cases(view, zone: ZoneInfo) -> dict:
    """dashboard_days as the `cases` rows give them, naively: each case's tests (TESTS), its local
    day, its durations in hours, its score (summed as a Fraction)."""
    out: dict = {}
    for r in view.query("SELECT * FROM {cases}"):
        key = (_at(r["opened_at"]).astimezone(zone).date().isoformat(), r["team"] or "", r["channel"])
        cell = out.setdefault(key, {"n": Counter(), "score": Fraction(0), "first": [], "resolution": []})
        for name, test in TESTS.items():
            cell["n"][name] += 1 if test(r) else 0
        if r["satisfaction_score"] is not None:
            cell["score"] += Fraction(r["satisfaction_score"])
        for col, into in (("first_response_seconds", "first"), ("resolution_seconds", "resolution")):
            if r[col] is not None:
                cell[into].append(r[col] / 3600)
    for cell in out.values():
        cell["first"].sort()
        cell["resolution"].sort()
    return out


def kept_days(view) -> tuple[set[str], dict]:
    rows = view.query("SELECT * FROM {dashboard_days}")
    return {r["zone"] for r in rows}, {
        (r["local_day"], r["team"], r["channel"]): {
            "n": Counter({name: r[f"n_{name}"] for name in TESTS}), "score": Fraction(int(r["score_sum"]), 2 ** 60),
            "first": list(dashboard.unpack(r["first_response_h"])),
            "resolution": list(dashboard.unpack(r["resolution_h"]))} for r in rows}


def assert_days_equal_the_cases(view, zone: ZoneInfo) -> None:
    assert view.query("SELECT zone FROM {dashboard_zone}") == [{"zone": zone.key}]
    zones, got = kept_days(view)
    assert zones <= {zone.key}
    assert got == days_of_cases(view, zone)


@pytest.mark.parametrize("zone", [SHANGHAI, CHONGQING], ids=["days-kept", "cases-counted"])
def test_the_filters_offer_the_teams_and_channels_of_the_cases(view, zone):
    cases, _ = _all(view)
    assert None in {c["team"] for c in cases}  # cases without a team: offered as no team of the list
    expected = {"team": sorted({c["team"] for c in cases} - {None}), "channel": sorted({c["channel"] for c in cases})}
    assert len(expected["team"]) == 3 and len(expected["channel"]) == 4
    # Read from the days where they are kept in the zone, else from the cases: the same lists.
    flt = figures.Filters(start=date(2024, 1, 1), end=date(2025, 12, 31))
    assert figures.dashboard(view, flt, zone, NOW).from_days == (zone is SHANGHAI)
    assert figures.choices(view, zone) == expected


def test_the_days_equal_the_cases_counted_naively(view):
    assert_days_equal_the_cases(view, SHANGHAI)


def test_a_range_across_daylight_saving_changes_in_the_zone(view):
    """Days kept in Berlin: weeks and months across the spring and autumn changes of 2024, each day
    from its local midnight (23 or 25 hours long on the change)."""
    spring = figures.Filters(start=date(2024, 3, 18), end=date(2024, 4, 7), grain="week")
    autumn = figures.Filters(start=date(2024, 10, 1), end=date(2024, 11, 30))
    for flt in (spring, autumn):
        lo, hi = (datetime.combine(d, time(), BERLIN) for d in (flt.start, flt.end))
        assert lo.utcoffset() != hi.utcoffset()
    try:
        dashboard.keep(view, BERLIN.key)
        assert_days_equal_the_cases(view, BERLIN)
        for flt in (spring, autumn):
            assert_dashboard_equals_the_oracle(view, flt, BERLIN, NOW, from_days=True)
        assert not figures.dashboard(view, spring, SHANGHAI, NOW).from_days  # kept in Berlin only now
    finally:
        dashboard.keep(view, SHANGHAI.key)


def test_a_day_is_from_the_zone_s_midnight_not_utc_s(view):
    """Shanghai's day starts at 16:00 UTC the day before: a range whose first day holds a case
    opened before UTC's midnight counts it there, and UTC's days do not."""
    cases, _ = _all(view)
    edge = min((r for r in cases if _at(r["opened_at"]).date() != _at(r["opened_at"]).astimezone(SHANGHAI).date()
                and _at(r["opened_at"]) > datetime(2024, 6, 1, tzinfo=UTC)), key=lambda r: r["opened_at"])
    start = _at(edge["opened_at"]).astimezone(SHANGHAI).date()
    flt = figures.Filters(start=start, end=start + timedelta(days=2), grain="week")
    assert edge in _in_range(cases, flt, SHANGHAI) and edge not in _in_range(cases, flt, ZoneInfo("UTC"))
    assert_dashboard_equals_the_oracle(view, flt, SHANGHAI, NOW, from_days=True)
    d = figures.dashboard(view, flt, SHANGHAI, NOW)
    assert d.rows == len(_in_range(cases, flt, SHANGHAI)) != len(_in_range(cases, flt, ZoneInfo("UTC")))


def test_the_live_projection_keeps_the_days_a_rebuild_makes(backend, tmp_path):  # noqa: F811
    """Events through the live projection in small batches (cases split across them) keep the days
    equal to the cases; a rebuild makes the very same rows; a projection opened with another zone
    derives them anew in its next batch, and one opened with none drops them."""
    store, env = backend
    env = {**env, dashboard.ZONE_KEY: SHANGHAI.key}
    write_history(store, cases=60)
    view = open_view(env)
    ReportProjection(store, view, batch_size=7).catch_up()
    assert_days_equal_the_cases(view, SHANGHAI)
    live = kept_days(view)
    cases = view.query("SELECT opened_at FROM {cases}")
    days = sorted(_at(r["opened_at"]).astimezone(SHANGHAI).date() for r in cases)
    flt = figures.Filters(start=days[0], end=days[-1], grain="week")
    d = figures.dashboard(view, flt, SHANGHAI, NOW)
    assert d.from_days and d.rows == len(cases)
    assert_dashboard_equals_the_oracle(view, flt, SHANGHAI, NOW, from_days=True)

    assert rebuild(store, env) == store.recorder.max_notification_id()
    assert kept_days(view) == live

    berlin = open_view({**env, dashboard.ZONE_KEY: BERLIN.key})
    write_history(store, cases=3, seed=9)
    ReportProjection(store, berlin, batch_size=5).catch_up()
    assert_days_equal_the_cases(berlin, BERLIN)
    ReportProjection(store, berlin, batch_size=5).catch_up()
    none = open_view({k: v for k, v in env.items() if k != dashboard.ZONE_KEY})
    write_history(store, cases=1, seed=10)
    ReportProjection(store, none).catch_up()
    assert none.query("SELECT * FROM {dashboard_zone}") == [] and none.query("SELECT * FROM {dashboard_days}") == []
    assert not figures.dashboard(none, flt, SHANGHAI, NOW).from_days
