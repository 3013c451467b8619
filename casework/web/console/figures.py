"""What the console reads from the reporting tables (projections/schema.py, docs/reporting.md).

Queries stay small and portable (SQLite and PostgreSQL); grouping by week or month in the calendar's
zone and percentiles are done here in Python. Every dashboard figure is a count of cases that pass a
named test (FIGURES), so the same test that counts a figure lists the cases behind it: a figure and
its drill-down cannot disagree.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from projections import reports
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


def queue(view: ReportView, *, assignee: str | None = None, teams: tuple[str, ...] = ()) -> list[dict]:
    """Open cases assigned to a person, or in any of some teams, the soonest due first."""
    if assignee is not None:
        where, params = "c.assignee = ?", [assignee]
    elif teams:
        where, params = f"c.team IN ({', '.join('?' for _ in teams)})", list(teams)
    else:
        return []
    rows = view.query(f"""SELECT {CASE_COLUMNS}, {NEXT_DUE} FROM {{cases}} c
                          WHERE c.closed_at IS NULL AND {where}""", params)
    return sorted(rows, key=lambda r: (r["next_due"] is None, r["next_due"] or "", r["opened_at"]))


def case_row(view: ReportView, case_id: str) -> dict | None:
    rows = view.query(f"SELECT {CASE_COLUMNS} FROM {{cases}} c WHERE c.case_id = ?", [case_id])
    return rows[0] if rows else None


@dataclass
class Board:
    at_risk: list[dict]  # running clocks due within AT_RISK_WITHIN, not yet past due
    breached: list[dict]  # open cases with a breached clock
    escalated: list[dict]  # open cases above level 0, with the latest escalation step


def board(view: ReportView, now: datetime) -> Board:
    risky = [r for r in reports.at_risk(view, AT_RISK_WITHIN, now) if r["due"] > iso(now)]
    breached = view.query(f"""SELECT {CASE_COLUMNS}, {NEXT_DUE} FROM {{cases}} c
                              WHERE c.closed_at IS NULL AND {BREACHED} > 0 ORDER BY c.opened_at""")
    clocks: dict[str, list[dict]] = defaultdict(list)  # one query for every open case's breaches
    for k in view.query("""SELECT k.case_id, k.clock, k.breached_at FROM {sla_clocks} k
                           JOIN {cases} c ON c.case_id = k.case_id
                           WHERE c.closed_at IS NULL AND k.breached = 1 ORDER BY k.breached_at"""):
        clocks[k["case_id"]].append(k)
    for r in breached:
        mine = clocks.get(r["case_id"], [])
        r["clocks"] = sorted({k["clock"] for k in mine})
        r["breached_at"] = mine[0]["breached_at"] if mine else None
    escalated = view.query(f"""SELECT {CASE_COLUMNS} FROM {{cases}} c
                               WHERE c.closed_at IS NULL AND c.escalation_level > 0 ORDER BY c.opened_at""")
    steps: dict[str, list[dict]] = defaultdict(list)  # newest first, per case
    for s in view.query("""SELECT e.case_id, e.kind, e.level, e.level_name, e.owner, e.cause, e.at
                           FROM {escalations} e JOIN {cases} c ON c.case_id = e.case_id
                           WHERE c.closed_at IS NULL AND c.escalation_level > 0
                           ORDER BY e.case_id, e.seq DESC"""):
        steps[s["case_id"]].append(s)
    for r in escalated:
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


def case_rows(view: ReportView, filters: Filters, zone: ZoneInfo) -> list[dict]:
    lo, hi = filters.bounds(zone)
    where, params = ["c.opened_at >= ?", "c.opened_at < ?"], [lo, hi]
    if filters.team == NO_TEAM:
        where.append("c.team IS NULL")
    elif filters.team:
        where.append("c.team = ?")
        params.append(filters.team)
    if filters.channel:
        where.append("c.channel = ?")
        params.append(filters.channel)
    return view.query(f"""SELECT {CASE_COLUMNS}, c.sla_policy_version, {BREACHED} AS breached_clocks,
                                 c.first_response_seconds, c.resolution_seconds, c.first_contact_resolution,
                                 c.reopen_count, c.satisfaction_score
                          FROM {{cases}} c WHERE {" AND ".join(where)} ORDER BY c.opened_at""", params)


def choices(view: ReportView) -> dict[str, list[str]]:
    """The teams and channels the filters offer: those the tables hold."""
    return {"team": [r["v"] for r in view.query(
                "SELECT DISTINCT team AS v FROM {cases} WHERE team IS NOT NULL ORDER BY 1")],
            "channel": [r["v"] for r in view.query("SELECT DISTINCT channel AS v FROM {cases} ORDER BY 1")]}


AGE_BUCKETS = tuple(name for _, name in reports.AGE_BUCKETS) + (">30d",)


def age_bucket(opened_at: str, now: datetime) -> str:
    age = now - _when(opened_at)
    return next((name for limit, name in reports.AGE_BUCKETS if age < limit), ">30d")


def _sla_held(r: dict) -> bool:
    return r["sla_policy_version"] is not None


# The tests behind the figures. Age buckets are added below (they need `now`).
FIGURES: dict[str, Callable[[dict], bool]] = {
    "opened": lambda r: True,
    "sla_held": _sla_held,
    "sla_met": lambda r: _sla_held(r) and not r["breached_clocks"],
    "breached": lambda r: _sla_held(r) and bool(r["breached_clocks"]),
    "responded": lambda r: r["first_response_seconds"] is not None,
    "resolved": lambda r: r["resolution_seconds"] is not None,
    "closed": lambda r: r["closed_at"] is not None,
    "fcr": lambda r: r["closed_at"] is not None and bool(r["first_contact_resolution"]),
    "reopened": lambda r: r["closed_at"] is not None and r["reopen_count"] > 0,
    "surveyed": lambda r: r["satisfaction_score"] is not None,
    "below_target": lambda r: r["satisfaction_score"] is not None
    and r["satisfaction_score"] < reports.SATISFACTION_TARGET,
    "open": lambda r: r["closed_at"] is None,
}


def figure_test(name: str, now: datetime) -> Callable[[dict], bool] | None:
    if name.startswith("age:") and name[4:] in AGE_BUCKETS:
        return lambda r: r["closed_at"] is None and age_bucket(r["opened_at"], now) == name[4:]
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


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 1)


def summary(rows: list[dict]) -> dict:
    """The headline figures of a set of cases: counts, rates, percentiles (hours), satisfaction."""
    n = {name: sum(1 for r in rows if test(r)) for name, test in FIGURES.items()}
    first = [r["first_response_seconds"] / 3600 for r in rows if r["first_response_seconds"] is not None]
    resolution = [r["resolution_seconds"] / 3600 for r in rows if r["resolution_seconds"] is not None]
    scores = [r["satisfaction_score"] for r in rows if r["satisfaction_score"] is not None]
    fr, rs = reports.percentiles(first), reports.percentiles(resolution)
    return {"n": n,
            "compliance_pct": _pct(n["sla_met"], n["sla_held"]),
            "fcr_pct": _pct(n["fcr"], n["closed"]),
            "reopen_pct": _pct(n["reopened"], n["closed"]),
            "first_response_h": {"p50": fr[0], "p90": fr[1], "p95": fr[2]},
            "resolution_h": {"p50": rs[0], "p90": rs[1], "p95": rs[2]},
            "satisfaction": round(sum(scores) / len(scores), 1) if scores else None,
            "target": reports.SATISFACTION_TARGET}


@dataclass
class Dashboard:
    filters: Filters
    total: dict
    trend: list[tuple[str, dict | None]]  # (period, summary) - None: no case opened in it
    teams: list[tuple[str, dict]]
    backlog: dict[str, int]
    rows: int


def dashboard(view: ReportView, filters: Filters, zone: ZoneInfo, now: datetime) -> Dashboard:
    rows = case_rows(view, filters, zone)
    by_period: dict[str, list[dict]] = defaultdict(list)
    by_team: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_period[period_of(r["opened_at"], filters.grain, zone)].append(r)
        by_team[r["team"] or NO_TEAM].append(r)
    trend = [(p, summary(by_period[p]) if by_period.get(p) else None) for p in periods(filters)]
    backlog = {b: sum(1 for r in rows if r["closed_at"] is None and age_bucket(r["opened_at"], now) == b)
               for b in AGE_BUCKETS}
    return Dashboard(filters, summary(rows), trend, sorted((t, summary(rs)) for t, rs in by_team.items()),
                     backlog, len(rows))


def drill_down(view: ReportView, filters: Filters, zone: ZoneInfo, now: datetime, figure: str,
               period: str = "", team: str = "") -> list[dict] | None:
    """The cases behind one figure (optionally of one period or team); None for an unknown figure."""
    test = figure_test(figure, now)
    if test is None:
        return None
    rows = [r for r in case_rows(view, filters, zone) if test(r)]
    if period:
        rows = [r for r in rows if period_of(r["opened_at"], filters.grain, zone) == period]
    if team:
        rows = [r for r in rows if (r["team"] or NO_TEAM) == team]
    return rows


def utcnow() -> datetime:
    return datetime.now(UTC)
