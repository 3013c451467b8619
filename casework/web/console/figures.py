"""What the console reads from the reporting tables (projections/schema.py, docs/reporting.md).

Queries stay small and portable (SQLite and PostgreSQL); grouping by week or month in the calendar's
zone and percentiles are done here in Python. Every dashboard figure is a count of cases that pass a
named test (FIGURES), so the same test that counts a figure lists the cases behind it: a figure and
its drill-down cannot disagree.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Callable
from zoneinfo import ZoneInfo

from projections import dashboard as daily, reports
from projections.rows import iso
from projections.schema import CLOCK_NAMES
from projections.view import ReportView

AT_RISK_WITHIN = timedelta(hours=4)
NO_TEAM = "-"  # how cases without a team are named in the team comparison and its links
BREACHED = " + ".join(f"c.{n}_breached" for n in CLOCK_NAMES)
NEXT_DUE = ("(SELECT MIN(k.due) FROM {sla_clocks} k WHERE k.case_id = c.case_id AND k.state = 'running') "
            "AS next_due")
CASE_COLUMNS = ("c.case_id, c.priority, c.tier, c.stage, c.channel, c.category, c.team, c.assignee, "
                "c.opened_at, c.closed_at, c.escalation_level")


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- queues and the supervisor's board


QUEUE_PAGE = 50  # rows of a queue page (each reads its case from the event store for the subject); the rest by pages
BOARD_ROWS = 50  # rows of each of the board's sections: the most urgent, and how many there are


@dataclass
class Rows:
    """One page of a longer list: its rows, how many there are in all, where the page starts."""

    rows: list[dict]
    total: int
    offset: int = 0

    @property
    def more(self) -> bool:
        return self.offset + len(self.rows) < self.total


def queue(view: ReportView, *, assignee: str | None = None, teams: tuple[str, ...] = (),
          limit: int = QUEUE_PAGE, offset: int = 0) -> Rows:
    """Open cases assigned to a person, or in any of some teams, the soonest due first (those with
    no running clock last, then the oldest first): one page, and how many there are."""
    if assignee is not None:
        where, params = "c.assignee = ?", [assignee]
    elif teams:
        where, params = f"c.team IN ({', '.join('?' for _ in teams)})", list(teams)
    else:
        return Rows([], 0)
    with view.reading() as query:
        total = query(f"SELECT COUNT(*) AS n FROM {{cases}} c WHERE c.closed_at IS NULL AND {where}", params)[0]["n"]
        rows = query(f"""SELECT * FROM (SELECT {CASE_COLUMNS}, {NEXT_DUE} FROM {{cases}} c
                                        WHERE c.closed_at IS NULL AND {where}) AS q
                         ORDER BY (q.next_due IS NULL), q.next_due, q.opened_at, q.case_id
                         LIMIT {int(limit)} OFFSET {int(offset)}""", params)
    return Rows(rows, total, offset)


def case_row(view: ReportView, case_id: str) -> dict | None:
    rows = view.query(f"SELECT {CASE_COLUMNS} FROM {{cases}} c WHERE c.case_id = ?", [case_id])
    return rows[0] if rows else None


@dataclass
class Board:
    at_risk: Rows  # running clocks due within AT_RISK_WITHIN, not yet past due, the soonest first
    breached: Rows  # open cases with a breached clock, the oldest first
    escalated: Rows  # open cases above level 0, with the latest escalation step, the oldest first


def _in(ids: list[str]) -> str:
    return f"({', '.join('?' for _ in ids)})" if ids else "(NULL)"


def board(view: ReportView, now: datetime, limit: int = BOARD_ROWS) -> Board:
    """The supervisor's board: of each section the first `limit` rows and how many there are; the
    details (breached clocks, escalation steps) are read for the rows shown only."""
    page = reports.at_risk_page(view, AT_RISK_WITHIN, now, limit=limit, overdue=False)
    risky = Rows(page.rows, page.total)
    with view.reading() as query:
        where = f"c.closed_at IS NULL AND ({BREACHED}) > 0"
        breached = Rows(query(f"""SELECT {CASE_COLUMNS}, {NEXT_DUE} FROM {{cases}} c WHERE {where}
                                  ORDER BY c.opened_at, c.case_id LIMIT {int(limit)}"""),
                        query(f"SELECT COUNT(*) AS n FROM {{cases}} c WHERE {where}")[0]["n"])
        ids = [r["case_id"] for r in breached.rows]
        clocks: dict[str, list[dict]] = defaultdict(list)
        for k in query(f"""SELECT k.case_id, k.clock, k.breached_at FROM {{sla_clocks}} k
                           WHERE k.case_id IN {_in(ids)} AND k.breached = 1 ORDER BY k.breached_at""", ids):
            clocks[k["case_id"]].append(k)
        for r in breached.rows:
            mine = clocks.get(r["case_id"], [])
            r["clocks"] = sorted({k["clock"] for k in mine})
            r["breached_at"] = mine[0]["breached_at"] if mine else None
        where = "c.closed_at IS NULL AND c.escalation_level > 0"
        escalated = Rows(query(f"""SELECT {CASE_COLUMNS} FROM {{cases}} c WHERE {where}
                                   ORDER BY c.opened_at, c.case_id LIMIT {int(limit)}"""),
                         query(f"SELECT COUNT(*) AS n FROM {{cases}} c WHERE {where}")[0]["n"])
        ids = [r["case_id"] for r in escalated.rows]
        steps: dict[str, list[dict]] = defaultdict(list)  # newest first, per case
        for s in query(f"""SELECT e.case_id, e.kind, e.level, e.level_name, e.owner, e.cause, e.at
                           FROM {{escalations}} e WHERE e.case_id IN {_in(ids)}
                           ORDER BY e.case_id, e.seq DESC""", ids):
            steps[s["case_id"]].append(s)
    for r in escalated.rows:
        mine = steps.get(r["case_id"], [])
        latest = next((s for s in mine if s["kind"] == "escalated"), None)
        r["level_name"] = latest["level_name"] if latest else None
        r["owner"] = latest["owner"] if latest else None
        r["cause"] = latest["cause"] if latest else None
        r["escalated_at"] = latest["at"] if latest else None
        r["acknowledged"] = bool(mine) and mine[0]["kind"] == "acknowledged"
    return Board(risky, breached, escalated)


# ---------------------------------------------------------------- the manager's dashboard


# The days the console reads: wide enough for any imported history, narrow enough that the first
# day's midnight in any zone, and the day after the last, are still datetimes Python can hold.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def day_in_range(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{day} is outside {FIRST_DAY}..{LAST_DAY}")
    return day


def years_before(day: date, years: int) -> date:
    """The same day `years` earlier; 29 February becomes the 28th in a common year."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def form_instant(text: str, zone: ZoneInfo) -> datetime:
    """A date or date-time typed in a form: one without an offset is in the console's zone (as the
    dashboard's days are); one with an offset is that instant. ValueError: not one, or out of range."""
    value = datetime.fromisoformat(text)
    day_in_range(value.date())
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


@dataclass(frozen=True)
class Filters:
    start: date  # first day, in the calendar's zone
    end: date  # last day, inclusive
    team: str = ""
    channel: str = ""
    grain: str = "month"  # or "week"

    def bounds(self, zone: ZoneInfo) -> tuple[str, str]:
        """The range as UTC text: from the first day's local midnight to the midnight after the last."""
        lo = datetime.combine(self.start, time(), zone)
        hi = datetime.combine(self.end + timedelta(days=1), time(), zone)
        return iso(lo), iso(hi)

    def query(self, **extra: str) -> dict[str, str]:
        out = {"from": self.start.isoformat(), "to": self.end.isoformat(), "grain": self.grain}
        if self.team:
            out["team"] = self.team
        if self.channel:
            out["channel"] = self.channel
        return {**out, **extra}


def default_filters(today: date) -> Filters:
    """The current month and the two before it."""
    first = today.replace(day=1)
    for _ in range(2):
        first = (first - timedelta(days=1)).replace(day=1)
    return Filters(start=first, end=today)


def choices(view: ReportView, zone: ZoneInfo) -> dict[str, list[str]]:
    """The teams and channels the filters offer: those the cases hold. Where the dashboard's days are
    kept in this zone they name them (a row per day, team and channel with a case opened: a few
    thousand rows for years, where the cases are a scan of every row, 70-110 ms over 50,000)."""
    with view.reading() as query:
        if _days_kept(query, zone):
            return {"team": [r["v"] for r in query("SELECT DISTINCT team AS v FROM {dashboard_days} "
                                                   "WHERE zone = ? AND team <> '' ORDER BY 1", [zone.key])],
                    "channel": [r["v"] for r in query("SELECT DISTINCT channel AS v FROM {dashboard_days} "
                                                      "WHERE zone = ? ORDER BY 1", [zone.key])]}
        # A team of '' is no team, as the days (and the comparison's no-team row) count it.
        return {"team": [r["v"] for r in query(
                    "SELECT DISTINCT team AS v FROM {cases} WHERE NULLIF(team, '') IS NOT NULL ORDER BY 1")],
                "channel": [r["v"] for r in query("SELECT DISTINCT channel AS v FROM {cases} ORDER BY 1")]}


def _days_kept(query: Callable[..., list], zone: ZoneInfo) -> bool:
    """Whether dashboard_days are kept in this zone, and up to the tables' furthest tracking
    position: a writer that does not keep the days (an older version's projection) leaves them
    behind it, and they are not read."""
    return zone.key is not None and bool(query(
        "SELECT zone FROM {dashboard_zone} WHERE zone = ? AND position = "
        "(SELECT COALESCE(MAX(notification_id), 0) FROM {tracking})", [zone.key]))


AGE_BUCKETS = tuple(name for _, name in reports.AGE_BUCKETS) + (">30d",)


def age_bucket(opened_at: str, now: datetime) -> str:
    age = now - _when(opened_at)
    return next((name for limit, name in reports.AGE_BUCKETS if age < limit), ">30d")


# The tests behind the figures, in SQL over `cases c`: one definition counts a figure and lists
# the cases behind it. Age buckets are added by figure_sql (they need `now`).
FIGURES: dict[str, str] = {
    "opened": "1 = 1",
    "sla_held": "c.sla_policy_version IS NOT NULL",
    "sla_met": f"c.sla_policy_version IS NOT NULL AND ({BREACHED}) = 0",
    "breached": f"c.sla_policy_version IS NOT NULL AND ({BREACHED}) > 0",
    "responded": "c.first_response_seconds IS NOT NULL",
    "resolved": "c.resolution_seconds IS NOT NULL",
    "closed": "c.closed_at IS NOT NULL",
    "fcr": "c.closed_at IS NOT NULL AND c.first_contact_resolution <> 0",
    "reopened": "c.closed_at IS NOT NULL AND c.reopen_count > 0",
    "surveyed": "c.satisfaction_score IS NOT NULL",
    "below_target": f"c.satisfaction_score IS NOT NULL AND c.satisfaction_score < {reports.SATISFACTION_TARGET}",
    "open": "c.closed_at IS NULL",
}


assert tuple(FIGURES) == daily.FIGURES  # dashboard_days keeps a count of each, in this order


def _age_sql(bucket: str, now: datetime) -> str:
    """Open cases of an age bucket: opened after now - its upper limit, not after now - the one
    below (age < limit is opened_at > now - limit; ISO text compares as time)."""
    limits = [limit for limit, _ in reports.AGE_BUCKETS]
    i = AGE_BUCKETS.index(bucket)
    parts = ["c.closed_at IS NULL"]
    if i < len(limits):
        parts.append(f"c.opened_at > '{iso(now - limits[i])}'")
    if i > 0:
        parts.append(f"c.opened_at <= '{iso(now - limits[i - 1])}'")
    return " AND ".join(parts)


def figure_sql(name: str, now: datetime) -> str | None:
    """The SQL test of a figure (a condition on `cases c`), or None for a name that is none."""
    if name.startswith("age:") and name[4:] in AGE_BUCKETS:
        return _age_sql(name[4:], now)
    return FIGURES.get(name)


def period_of(opened_at: str, grain: str, zone: ZoneInfo) -> str:
    local = _when(opened_at).astimezone(zone)
    if grain == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


def periods(filters: Filters) -> list[str]:
    """Every week or month of the range, those without cases included (they show as 'no data')."""
    out: list[str] = []
    day = filters.start
    while day <= filters.end:
        if filters.grain == "week":
            year, week, _ = day.isocalendar()
            label = f"{year}-W{week:02d}"
        else:
            label = f"{day.year}-{day.month:02d}"
        if not out or out[-1] != label:
            out.append(label)
        day += timedelta(days=1)
    return out


def period_spans(filters: Filters, zone: ZoneInfo) -> list[tuple[str, str, str]]:
    """(label, from, to) of every period of the range: UTC text from the local midnight of its first
    day in the range to that of the next period's (the range's end for the last)."""
    labels = periods(filters)
    starts: list[date] = []
    day = filters.start
    while day <= filters.end:
        label = (f"{day.isocalendar()[0]}-W{day.isocalendar()[1]:02d}" if filters.grain == "week"
                 else f"{day.year}-{day.month:02d}")
        if len(starts) < len(labels) and label == labels[len(starts)]:
            starts.append(day)
        day += timedelta(days=1)
    bounds = [iso(datetime.combine(d, time(), zone)) for d in starts] + [filters.bounds(zone)[1]]
    return [(label, bounds[i], bounds[i + 1]) for i, label in enumerate(labels)]


def _period_case(spans: list[tuple[str, str, str]], lo: int = 0, hi: int | None = None) -> str:
    """SQL naming the period (its index) of `c.opened_at`: a binary search over the periods' starts
    (a few comparisons per case, however many weeks the range holds). The bounds are our own ISO
    text, never user input."""
    hi = len(spans) if hi is None else hi
    if hi - lo == 1:
        return str(lo)
    mid = (lo + hi) // 2
    return (f"CASE WHEN c.opened_at < '{spans[mid][1]}' THEN {_period_case(spans, lo, mid)} "
            f"ELSE {_period_case(spans, mid, hi)} END")


TEAM = f"COALESCE(NULLIF(c.team, ''), '{NO_TEAM}')"


def _range_where(filters: Filters, zone: ZoneInfo) -> tuple[list[str], list]:
    lo, hi = filters.bounds(zone)
    where, params = ["c.opened_at >= ?", "c.opened_at < ?"], [lo, hi]
    if filters.team == NO_TEAM:
        where.append("(c.team IS NULL OR c.team = '')")
    elif filters.team:
        where.append("c.team = ?")
        params.append(filters.team)
    if filters.channel:
        where.append("c.channel = ?")
        params.append(filters.channel)
    return where, params


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 1)


DURATIONS = {"first_response_h": "first_response_seconds", "resolution_h": "resolution_seconds"}


def _summary(n: dict[str, int], score_sum: float, hours: dict[str, tuple]) -> dict:
    """The headline figures of a set of cases from its counts, its surveys' score sum and its
    percentiles (hours): rates, p50/p90/p95, satisfaction."""
    return {"n": n,
            "compliance_pct": _pct(n["sla_met"], n["sla_held"]),
            "fcr_pct": _pct(n["fcr"], n["closed"]),
            "reopen_pct": _pct(n["reopened"], n["closed"]),
            **{key: dict(zip(("p50", "p90", "p95"), hours.get(key, (None, None, None)))) for key in DURATIONS},
            "satisfaction": round(score_sum / n["surveyed"], 1) if n["surveyed"] else None,
            "target": reports.SATISFACTION_TARGET}


@dataclass
class Dashboard:
    filters: Filters
    total: dict
    trend: list[tuple[str, dict | None]]  # (period, summary) - None: no case opened in it
    teams: list[tuple[str, dict]]
    backlog: dict[str, int]
    rows: int  # cases opened in the range
    from_days: bool = False  # summed from dashboard_days (else counted over the cases)


def dashboard(view: ReportView, filters: Filters, zone: ZoneInfo, now: datetime) -> Dashboard:
    """Every figure per period, per team and in all, never a case listed: the same tests (FIGURES)
    list the cases behind a figure (drill_down). Where the projection keeps the dashboard's days in
    this zone (projections/dashboard.py) they are summed (_from_days: a few thousand rows for
    years); else PostgreSQL counts and ranks in the server (_in_the_server) and SQLite reads two
    numbers and a few flags a case from the `cases_figures` index in one pass (_in_one_pass)."""
    spans = period_spans(filters, zone)
    where, params = _range_where(filters, zone)
    tests = {**FIGURES, **{f"age:{b}": _age_sql(b, now) for b in AGE_BUCKETS}}
    how = _in_the_server if view.ranks_in_one_statement else _in_one_pass
    with view.reading() as query:
        tally = _from_days(query, filters, zone, spans, now, view.concat_function)
        from_days = tally is not None
        if tally is None:
            tally = how(query, _period_case(spans), " AND ".join(where), params, tests)
    counts, scores, hours = tally

    def summary_of(key: tuple) -> dict:
        n = {name: counts[key].get(name, 0) for name in FIGURES}
        return _summary(n, scores.get(key, 0.0), hours.get(key, {}))

    trend = [(label, summary_of(("p", i)) if counts[("p", i)].get("opened") else None)
             for i, (label, _, _) in enumerate(spans)]
    teams = sorted((key[1], summary_of(key)) for key in counts if key[0] == "t" and counts[key].get("opened"))
    total = counts[("", "")]
    return Dashboard(filters, summary_of(("", "")), trend, teams,
                     {b: total.get(f"age:{b}", 0) for b in AGE_BUCKETS}, total.get("opened", 0),
                     from_days=from_days)


def _from_days(query: Callable[..., list], filters: Filters, zone: ZoneInfo, spans: list[tuple[str, str, str]],
               now: datetime, concat: str) -> Tally | None:
    """The tally from `dashboard_days`, or None where they are not kept in this zone (or a score in
    the range is not summed exactly there). The days' rows are named by period in SQL (a binary
    search over the periods' first days) and summed by period and team there (the scores' exact
    sums and the sorted durations as joined text); merged here per period, team and in all, so the percentiles are ranked over the cases' very values. The
    age buckets of open cases need `now`: read from the cases opened in the last 30 days, the
    rest are the older open ones."""
    if not _days_kept(query, zone):
        return None
    firsts = [datetime.fromisoformat(lo.replace("Z", "+00:00")).astimezone(zone).date().isoformat()
              for _, lo, _ in spans]

    def period(lo: int, hi: int) -> str:
        if hi - lo == 1:
            return str(lo)
        mid = (lo + hi) // 2
        return f"CASE WHEN d.local_day < '{firsts[mid]}' THEN {period(lo, mid)} ELSE {period(mid, hi)} END"

    where, params = ["d.zone = ?", "d.local_day >= ?", "d.local_day <= ?"], \
        [zone.key, filters.start.isoformat(), filters.end.isoformat()]
    if filters.team:
        where.append("d.team = ?")
        params.append("" if filters.team == NO_TEAM else filters.team)
    if filters.channel:
        where.append("d.channel = ?")
        params.append(filters.channel)
    condition = " AND ".join(where)
    # One row per (period, team), each aggregate one text value: through PostgreSQL's driver each
    # value read costs microseconds, so a few hundred rows of a few values, not the days' thousands.
    text = lambda sql: f"CAST({sql} AS TEXT)"  # noqa: E731
    counts_sql = " || ',' || ".join(text(f"SUM(d.{c})") for c in daily.COUNTS)
    rows = query(f"""SELECT p, team AS t, {counts_sql} AS n, SUM(d.score_odd) AS odd, {concat}(d.score_sum, ',') AS s,
                            {concat}(d.first_response_h, '') AS f, {concat}(d.resolution_h, '') AS r
                     FROM (SELECT {period(0, len(spans))} AS p, d.* FROM {{dashboard_days}} d
                           WHERE {condition}) AS d
                     GROUP BY p, team""", params, positional=True)
    counts: dict = defaultdict(lambda: defaultdict(int))
    sums: dict = defaultdict(int)
    joined: dict = defaultdict(lambda: ([], []))
    for p, t, n, odd, score, first, resolution in sorted(rows, key=lambda r: (int(r[0]), r[1] or "")):
        if odd:
            return None  # a score the rows do not sum exactly: the cases are summed instead
        p, t = int(p), t or NO_TEAM
        n = [int(x) for x in n.split(",")]
        exact = sum(map(int, score.split(",")))
        lists = (sorted(daily.unpack(first)), sorted(daily.unpack(resolution)))
        for key in (("p", p), ("t", t), ("", "")):
            into = counts[key]
            for name, k in zip(daily.FIGURES, n):
                into[name] += k
            sums[key] += exact
        for key in (("p", p), ("t", t)):
            for got, values in zip(joined[key], lists):
                got.extend(values)
    for lists in joined.values():
        for got in lists:
            got.sort()  # sorted runs: a period's, one per team; a team's, one per period
    teams = [lists for key, lists in joined.items() if key[0] == "t"]
    if teams:  # all of them: the teams' sorted lists, a few runs to merge (not one per period and team)
        everything: tuple[list, list] = ([], [])
        for lists in teams:
            for got, values in zip(everything, lists):
                got.extend(values)
        for got in everything:
            got.sort()
        joined[("", "")] = everything
    scores: dict = {key: total / daily.SCALE for key, total in sums.items()}  # correctly rounded
    hours: dict = defaultdict(dict)
    for key, lists in joined.items():
        for name, got in zip(DURATIONS, lists):
            hours[key][name] = _ranked(got)
    _backlog(query, filters, zone, now, counts[("", "")])
    return counts, scores, hours


def _ranked(values: list[float]) -> tuple:
    """p50, p90, p95 of sorted values: reports.percentile_of_ranked at statistics.quantiles' ranks,
    which equals reports.percentiles over the same values to the last bit."""
    n = len(values)
    if not n:
        return None, None, None
    out = []
    for pc in reports.PERCENTILES:
        rank = pc * (n - 1) // 100
        out.append(reports.percentile_of_ranked(pc, n, values[rank], values[rank + 1] if rank + 1 < n else None))
    return tuple(out)


def _backlog(query: Callable[..., list], filters: Filters, zone: ZoneInfo, now: datetime, total: dict) -> None:
    """The open cases by age (they need `now`): the buckets below 30 days counted over the cases
    opened since, the oldest bucket as the rest of the range's open cases (the buckets part them)."""
    where, params = _range_where(filters, zone)
    recent = [b for b in AGE_BUCKETS if b != ">30d"]
    rows = query(f"""SELECT {", ".join(f"SUM(CASE WHEN {_age_sql(b, now)} THEN 1 ELSE 0 END) AS b{i}"
                                 for i, b in enumerate(recent))}
                     FROM {{cases}} c WHERE {" AND ".join(where)} AND c.closed_at IS NULL
                                      AND c.opened_at > '{iso(now - reports.AGE_BUCKETS[-1][0])}'""",
                 params, positional=True)
    got = [int(v or 0) for v in rows[0]]
    for b, n in zip(recent, got):
        total[f"age:{b}"] = n
    total["age:>30d"] = total.get("open", 0) - sum(got)


# (counts of each test, sum of satisfaction scores, percentiles) per key: ("p", period index),
# ("t", team) and ("", "") for all.
Tally = tuple[dict[tuple, dict[str, int]], dict[tuple, float], dict[tuple, dict[str, tuple]]]


def _in_the_server(query: Callable[..., list], period: str, where: str, params: list, tests: dict) -> Tally:
    """PostgreSQL: one statement, one scan of the range, grouped by period, by team and in all
    (grouping sets): the counts of each test, the scores' sum, and per duration an ordered-set
    aggregate of which only the values at the percentiles' ranks come back
    (reports.percentile_of_ranked)."""
    counts: dict = defaultdict(lambda: defaultdict(int))
    scores: dict = defaultdict(float)
    hours: dict = defaultdict(dict)
    names = list(tests)
    aggregates, picks = ["SUM(s) AS score_sum", *(f"SUM(b{i}) AS f{i}" for i in range(len(names)))], \
        ["score_sum", *(f"f{i}" for i in range(len(names)))]
    for key in DURATIONS:
        aggregates.append(f"COUNT({key}) AS n_{key}, array_agg({key} ORDER BY {key}) FILTER "
                          f"(WHERE {key} IS NOT NULL) AS a_{key}")
        picks.append(f"n_{key}")
        for pc in reports.PERCENTILES:  # arrays count from 1; bigint / int divides as integers
            picks.append(f"a_{key}[{pc} * (n_{key} - 1) / 100 + 1] AS lo_{key}_{pc}, "
                         f"a_{key}[{pc} * (n_{key} - 1) / 100 + 2] AS hi_{key}_{pc}")
    # seconds / 3600 in SQL: one IEEE division, as Python's
    # Scores summed as doubles (SUM of a REAL is a REAL): REALs are 4-byte floats, so their sums
    # are exact at any survey scale's values, as math.fsum's are.
    source = f"""SELECT {period} AS p, {TEAM} AS t, CAST(c.satisfaction_score AS DOUBLE PRECISION) AS s,
                        {", ".join(f"CASE WHEN {test} THEN 1 ELSE 0 END AS b{i}" for i, test in enumerate(tests.values()))},
                        {", ".join(f"c.{col} / 3600.0 AS {key}" for key, col in DURATIONS.items())}
                 FROM {{cases}} c WHERE {where}"""
    for r in query(f"""SELECT gp, gt, p, t, {", ".join(picks)} FROM (
                         SELECT GROUPING(p) AS gp, GROUPING(t) AS gt, p, t, {", ".join(aggregates)}
                         FROM ({source}) AS d GROUP BY GROUPING SETS ((p), (t), ())) AS g""", params):
        key = ("p", r["p"]) if not r["gp"] else ("t", r["t"]) if not r["gt"] else ("", "")
        scores[key] = r["score_sum"] or 0.0
        for i, name in enumerate(names):
            counts[key][name] = int(r[f"f{i}"] or 0)
        for name in DURATIONS:
            n = r[f"n_{name}"]
            hours[key][name] = tuple(None if not n else reports.percentile_of_ranked(
                pc, n, r[f"lo_{name}_{pc}"], r[f"hi_{name}_{pc}"]) for pc in reports.PERCENTILES)
    return counts, scores, hours


def _in_one_pass(query: Callable[..., list], period: str, where: str, params: list, tests: dict) -> Tally:
    """SQLite: one scan of the `cases_figures` index over the range, each case as its period,
    team, the tests it passes (bits), score and durations (hours), read by position; the counts by
    distinct (period, team, bits), the durations ranked here (reports.percentiles)."""
    bits = " + ".join(f"(CASE WHEN {test} THEN {1 << i} ELSE 0 END)" for i, test in enumerate(tests.values()))
    rows = query(f"""SELECT {period}, {TEAM}, {bits}, c.satisfaction_score,
                            {", ".join(f"c.{col} / 3600.0" for col in DURATIONS.values())}
                     FROM {{cases}} c WHERE {where} ORDER BY c.opened_at""", params, positional=True)
    counts: dict = defaultdict(lambda: defaultdict(int))
    for (p, t, passed), n in Counter(map(itemgetter(0, 1, 2), rows)).items():
        for key in (("p", p), ("t", t), ("", "")):
            into = counts[key]
            for i, name in enumerate(tests):
                if passed >> i & 1:
                    into[name] += n
    scores: dict = defaultdict(float)
    cells: dict = defaultdict(lambda: ([], []))
    summed: dict = defaultdict(list)
    for p, t, _, score, first, resolution in rows:
        if score is not None:
            summed[("p", p)].append(score)
            summed[("t", t)].append(score)
            summed[("", "")].append(score)
        if first is not None or resolution is not None:
            cell = cells[(p, t)]
            if first is not None:
                cell[0].append(first)
            if resolution is not None:
                cell[1].append(resolution)
    for key, values in summed.items():  # the exact sum, rounded once: in whatever order the cases come
        scores[key] = math.fsum(values)
    joined: dict = defaultdict(lambda: ([], []))
    for (p, t), (first, resolution) in cells.items():
        first.sort()  # small sorts; the joined lists are then sorted runs, which sorting merges
        resolution.sort()
        for key in (("p", p), ("t", t), ("", "")):
            joined[key][0].extend(first)
            joined[key][1].extend(resolution)
    hours: dict = defaultdict(dict)
    for key, lists in joined.items():
        for name, values in zip(DURATIONS, lists):
            hours[key][name] = reports.percentiles(values)
    return counts, scores, hours


DRILL_PAGE = 200  # cases listed behind a figure per page


def drill_down(view: ReportView, filters: Filters, zone: ZoneInfo, now: datetime, figure: str,
               period: str = "", team: str = "", *, limit: int = DRILL_PAGE, offset: int = 0) -> Rows | None:
    """The cases behind one figure (optionally of one period or team), oldest first: one page, and
    how many there are (the figure itself). None for an unknown figure."""
    test = figure_sql(figure, now)
    if test is None:
        return None
    where, params = _range_where(filters, zone)
    where.append(f"({test})")
    if period:
        span = next((s for s in period_spans(filters, zone) if s[0] == period), None)
        if span is None:
            return Rows([], 0, offset)
        where += ["c.opened_at >= ?", "c.opened_at < ?"]
        params += [span[1], span[2]]
    if team:
        where.append(f"{TEAM} = ?")
        params.append(team)
    condition = " AND ".join(where)
    with view.reading() as query:
        total = query(f"SELECT COUNT(*) AS n FROM {{cases}} c WHERE {condition}", params)[0]["n"]
        rows = query(f"""SELECT {CASE_COLUMNS}, c.sla_policy_version, {BREACHED} AS breached_clocks,
                                c.first_response_seconds, c.resolution_seconds, c.first_contact_resolution,
                                c.reopen_count, c.satisfaction_score
                         FROM {{cases}} c WHERE {condition}
                         ORDER BY c.opened_at, c.case_id LIMIT {int(limit)} OFFSET {int(offset)}""", params)
    return Rows(rows, total, offset)


def utcnow() -> datetime:
    return datetime.now(UTC)
