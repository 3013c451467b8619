"""The reports analysts and supervisors read, as SQL over the reporting tables.

Each report returns rows (dicts) for the terminal, CSV, JSON and the HTML report. The SQL is the same
on SQLite and PostgreSQL; each report reads aggregates or a few ranked rows, never every case
(docs/reporting.md lists the indexes and the pre-aggregated agent_totals they rely on).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import quantiles

from projections.rows import iso
from projections.schema import CLOCK_NAMES
from projections.view import ReportView

SATISFACTION_TARGET = 82  # the seeds' target score
GROUPS = {"period": "substr(opened_at, 1, 7)", "priority": "priority", "tier": "tier", "team": "team",
          "agent": "assignee", "channel": "channel", "category": "category"}


def sla_compliance(view: ReportView, by: str = "period") -> list[dict]:
    """Cases held to an SLA, and the share of them with no clock breached."""
    group = GROUPS[by]
    rows = view.query(f"""
        SELECT {group} AS grp, COUNT(*) AS cases,
               SUM(CASE WHEN {" + ".join(f"{n}_breached" for n in CLOCK_NAMES)} > 0
                        THEN 1 ELSE 0 END) AS breached,
               SUM(first_response_breached) AS first_response_breached,
               SUM(resolution_breached) AS resolution_breached
        FROM {{cases}} WHERE sla_policy_version IS NOT NULL GROUP BY {group} ORDER BY 1""")
    for r in rows:
        r[by] = r.pop("grp")
        r["compliance_pct"] = round(100.0 * (r["cases"] - r["breached"]) / r["cases"], 1)
    return [{by: r.pop(by), **r} for r in rows]


def next_replies(view: ReportView, by: str = "priority") -> list[dict]:
    """Next-response cycles (one per customer message after the first response), each measured on its
    own: how many were answered, how many breached (a breached cycle stays breached)."""
    group = {"priority": "c.priority", "tier": "c.tier", "team": "c.team", "channel": "c.channel"}.get(by, "c.priority")
    rows = view.query(f"""
        SELECT {group} AS grp, COUNT(*) AS cycles, SUM(CASE WHEN k.state = 'met' THEN 1 ELSE 0 END) AS answered,
               SUM(k.breached) AS breached
        FROM {{sla_clocks}} k JOIN {{cases}} c ON c.case_id = k.case_id
        WHERE k.clock = 'next_response' GROUP BY {group} ORDER BY 1""")
    for r in rows:
        r[by] = r.pop("grp")
        r["in_time_pct"] = round(100.0 * (r["cycles"] - r["breached"]) / r["cycles"], 1)
    return [{by: r.pop(by), **r} for r in rows]


DURATIONS = ("first_response_seconds", "first_response_business_seconds", "resolution_seconds",
             "resolution_business_seconds")


def response_times(view: ReportView, by: str = "priority") -> list[dict]:
    """First response and resolution times, p50/p90/p95, in calendar and business hours.

    The percentiles are read in SQL, not by fetching every case: per group and duration a count,
    then the one or two values each percentile needs, by rank: on SQLite `ORDER BY ... LIMIT 2
    OFFSET k`, which the (priority, duration) indexes answer without a sort for the default
    grouping; on PostgreSQL in one statement (ordered-set aggregates: _ranked_in_one_statement).
    A few statements whatever the number of cases, and only the ranked values come back.
    """
    group = GROUPS[by]
    if view.ranks_in_one_statement:
        counts, values, wanted = _ranked_in_one_statement(view, group)
    else:
        counts, values, wanted = _ranked_by_statements(view, group)
    return _times_rows(by, counts, values, wanted)


def _ranked_by_statements(view: ReportView, group: str) -> tuple[dict, dict, list]:
    """SQLite: counts per group and duration, then the values at the ranks (_values_at_ranks)."""
    with view.reading() as query:
        counts: dict = defaultdict(dict)
        for r in query(" UNION ALL ".join(f"SELECT '{col}' AS col, {group} AS grp, COUNT({col or '*'}) AS n "
                                          f"FROM {{cases}} GROUP BY {group}" for col in ("", *DURATIONS))):
            counts[r["col"]][r["grp"]] = r["n"]
        wanted = []  # (group, duration, percentile, rank, interpolation weight of the next value)
        for grp in counts[""]:
            for col in DURATIONS:
                n = counts[col].get(grp, 0)
                for p in PERCENTILES if n else ():
                    wanted.append((grp, col, p, *_rank(p, n)))
        values = _values_at_ranks(query, group, [(grp, col, rank) for grp, col, _, rank, _ in wanted])
    return counts, values, wanted


def _ranked_in_one_statement(view: ReportView, group: str) -> tuple[dict, dict, list]:
    """PostgreSQL: one statement, one scan. Per group and duration an ordered-set aggregate
    (array_agg ORDER BY, one sort per duration and group in the server), of which only the one or
    two values each percentile needs are sent back, picked by rank from the count; the same values
    _values_at_ranks reads, so the interpolation here is the same arithmetic to the last bit."""
    picks, aggregates = [], []
    for i, col in enumerate(DURATIONS):
        aggregates.append(f"COUNT({col}) AS n{i}, array_agg({col} ORDER BY {col}) FILTER "
                          f"(WHERE {col} IS NOT NULL) AS a{i}")
        picks.append(f"n{i}")
        for p in PERCENTILES:  # PostgreSQL arrays count from 1; bigint / int divides as integers
            picks.append(f"a{i}[{p} * (n{i} - 1) / 100 + 1] AS lo{i}_{p}, a{i}[{p} * (n{i} - 1) / 100 + 2] AS hi{i}_{p}")
    rows = view.query(f"SELECT grp, cases, {', '.join(picks)} FROM (SELECT {group} AS grp, COUNT(*) AS cases, "
                      f"{', '.join(aggregates)} FROM {{cases}} GROUP BY {group}) AS per_group")
    counts: dict = defaultdict(dict)
    values: dict = {}
    wanted = []
    for r in rows:
        counts[""][r["grp"]] = r["cases"]
        for i, col in enumerate(DURATIONS):
            n = counts[col][r["grp"]] = r[f"n{i}"]
            for p in PERCENTILES if n else ():
                rank, delta = _rank(p, n)
                wanted.append((r["grp"], col, p, rank, delta))
                values[(r["grp"], col, rank)] = [v for v in (r[f"lo{i}_{p}"], r[f"hi{i}_{p}"]) if v is not None]
    return counts, values, wanted


def _times_rows(by: str, counts: dict, values: dict, wanted: list) -> list[dict]:
    out = {grp: {by: grp, "cases": n} for grp, n in sorted(counts[""].items(), key=lambda kv: str(kv[0]))}
    for grp, col, p, rank, delta in wanted:
        at = values[(grp, col, rank)]
        low, high = at[0], at[1] if len(at) > 1 else at[0]
        out[grp][f"{col.replace('_seconds', '_hours')}_p{p}"] = round((low * (100 - delta) + high * delta) / 100 / 3600, 2)
    for row in out.values():
        for col in DURATIONS:
            for p in PERCENTILES:
                row.setdefault(f"{col.replace('_seconds', '_hours')}_p{p}", None)
        # the columns in the order the report always had
        row_order = [by, "cases", *(f"{col.replace('_seconds', '_hours')}_p{p}" for col in DURATIONS for p in PERCENTILES)]
        row.update({k: row.pop(k) for k in row_order})
    return list(out.values())


PERCENTILES = (50, 90, 95)


def percentiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    """p50, p90 and p95 of values already in hand (the console's filtered sets), by the same
    definition the report's SQL ranks use (`_rank`): statistics.quantiles, inclusive."""
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = quantiles(values, n=100, method="inclusive")
    return q[49], q[89], q[94]


def percentile_of_ranked(p: int, n: int, low: float, high: float | None) -> float:
    """Percentile p of n values from the two the server picked by rank (`_rank`): the value of rank
    p*(n-1)//100 and the next (None when there is none). statistics.quantiles' own arithmetic
    (inclusive), so it equals `percentiles` over the same values to the last bit."""
    _, delta = _rank(p, n)
    if n == 1 or high is None:
        return low
    return (low * (100 - delta) + high * delta) / 100

RANKED_BY_INDEX = {"priority"}  # schema.INDEXES: cases (priority, duration) for each duration


def _rank(p: int, n: int) -> tuple[int, int]:
    """The rank (from 0) of the value percentile p of n values starts from, and the weight (of 100)
    of the next value: statistics.quantiles(values, n=100, method="inclusive")'s own arithmetic."""
    return divmod(p * (n - 1), 100)


def _values_at_ranks(query: Callable[..., list[dict]], group: str,
                     ranks: list[tuple[object, str, int]]) -> dict[tuple[object, str, int], list[float]]:
    """For each (group, duration, rank): the values of that rank and the next, in few statements.

    Where an index orders the durations within the groups (RANKED_BY_INDEX), each pair is read by
    rank; otherwise each duration is read once, sorted, and the ranks are picked here (one sort per
    duration instead of one per group and percentile)."""
    out: dict = {}
    unique = sorted(set(ranks), key=str)
    if group not in RANKED_BY_INDEX:
        for col in {col for _, col, _ in unique}:
            sorted_values: dict = defaultdict(list)
            for r in query(f"SELECT {group} AS grp, {col} AS v FROM {{cases}} WHERE {col} IS NOT NULL "
                           f"ORDER BY {col}"):
                sorted_values[r["grp"]].append(r["v"])
            for grp, c, rank in unique:
                if c == col:
                    out[(grp, col, rank)] = sorted_values[grp][rank:rank + 2]
        return out
    for start in range(0, len(unique), 200):  # SQLite takes at most 500 terms in one compound SELECT
        chunk = unique[start:start + 200]
        parts, params = [], []
        for i, (grp, col, rank) in enumerate(chunk):
            where = f"{group} IS NULL" if grp is None else f"{group} = ?"
            parts.append(f"SELECT {i} AS i, v FROM (SELECT {col} AS v FROM {{cases}} WHERE {where} AND {col} IS NOT NULL "
                         f"ORDER BY {col} LIMIT 2 OFFSET {rank}) AS r{i}")
            params += [] if grp is None else [grp]
        for key in chunk:
            out[key] = []
        for r in query(" UNION ALL ".join(parts), params):
            out[chunk[r["i"]]].append(r["v"])
    for values in out.values():
        values.sort()  # UNION ALL keeps no order across its terms' rows
    return out


def outcomes(view: ReportView, by: str = "period") -> list[dict]:
    """First contact resolution and reopen rate among closed cases."""
    group = GROUPS[by]
    rows = view.query(f"""
        SELECT {group} AS grp, COUNT(*) AS closed,
               SUM(first_contact_resolution) AS first_contact_resolved,
               SUM(CASE WHEN reopen_count > 0 THEN 1 ELSE 0 END) AS reopened
        FROM {{cases}} WHERE closed_at IS NOT NULL GROUP BY {group} ORDER BY 1""")
    return [{by: r["grp"], "closed": r["closed"], "first_contact_resolved": r["first_contact_resolved"],
             "fcr_pct": round(100.0 * r["first_contact_resolved"] / r["closed"], 1),
             "reopened": r["reopened"], "reopen_rate_pct": round(100.0 * r["reopened"] / r["closed"], 1)}
            for r in rows]


AGE_BUCKETS = ((timedelta(days=1), "<1d"), (timedelta(days=3), "1-3d"), (timedelta(days=7), "3-7d"),
               (timedelta(days=30), "7-30d"))


def backlog(view: ReportView, now: datetime | None = None) -> list[dict]:
    """Open cases by stage and age."""
    now = now or datetime.now(UTC)
    counts: dict = defaultdict(lambda: defaultdict(int))
    for r in view.query("SELECT stage, opened_at FROM {cases} WHERE closed_at IS NULL"):
        age = now - datetime.fromisoformat(r["opened_at"].replace("Z", "+00:00"))
        bucket = next((name for limit, name in AGE_BUCKETS if age < limit), ">30d")
        counts[r["stage"]][bucket] += 1
    names = [name for _, name in AGE_BUCKETS] + [">30d"]
    return [{"stage": stage, **{n: counts[stage][n] for n in names}, "total": sum(counts[stage].values())}
            for stage in sorted(counts)]


def satisfaction(view: ReportView, by: str = "period") -> list[dict]:
    group = GROUPS[by]
    rows = view.query(f"""SELECT {group} AS grp, COUNT(satisfaction_score) AS surveys,
                                 AVG(satisfaction_score) AS average
                          FROM {{cases}} WHERE satisfaction_score IS NOT NULL GROUP BY {group} ORDER BY 1""")
    return [{by: r["grp"], "surveys": r["surveys"], "average": round(r["average"], 1),
             "target": SATISFACTION_TARGET, "meets_target": r["average"] >= SATISFACTION_TARGET} for r in rows]


def complaints(view: ReportView) -> list[dict]:
    """Cases per month, category and department (team): complaints, enquiries and the rest."""
    return view.query("""SELECT substr(opened_at, 1, 7) AS month, category, COALESCE(team, '-') AS team,
                                COUNT(*) AS cases
                         FROM {cases} GROUP BY substr(opened_at, 1, 7), category, COALESCE(team, '-')
                         ORDER BY 1, 2, 3""")


def escalations(view: ReportView) -> list[dict]:
    return view.query("""SELECT level, COALESCE(level_name, '-') AS level_name, COALESCE(cause, '-') AS cause,
                                COUNT(*) AS escalations, COUNT(DISTINCT case_id) AS cases
                         FROM {escalations} WHERE kind = 'escalated'
                         GROUP BY level, COALESCE(level_name, '-'), COALESCE(cause, '-') ORDER BY 1, 2, 3""")


def agents(view: ReportView) -> list[dict]:
    """Per staff member: actions taken, cases touched, and cases now assigned to them. Actions and
    cases touched are kept per staff member by the projection (agent_totals), not counted here."""
    rows = view.query("""SELECT actor_id AS agent, actor_role AS role, actions, cases_touched
                         FROM {agent_totals} ORDER BY 1, 2""")
    assigned = {r["assignee"]: r["n"] for r in view.query(
        "SELECT assignee, COUNT(*) AS n FROM {cases} WHERE closed_at IS NULL AND assignee IS NOT NULL "
        "GROUP BY assignee")}
    return [{**r, "open_assigned": assigned.get(r["agent"], 0)} for r in rows]


# CROSS JOIN: SQLite then reads the clocks first, by the partial index `running_by_due`, in the
# page's order (left to itself it reads every open case, then sorts: twice the time); PostgreSQL
# plans a CROSS JOIN with a WHERE as the inner join it is.
AT_RISK_FROM = """FROM {sla_clocks} k CROSS JOIN {cases} c
                  WHERE c.case_id = k.case_id AND k.state = 'running' AND c.closed_at IS NULL AND k.due <= ?"""
AT_RISK_PAGE = 50  # what a supervisor reads first; the rest by pages (offset)


@dataclass
class AtRisk:
    rows: list[dict]  # one page, the most urgent first
    total: int  # every clock at risk


def at_risk_page(view: ReportView, within: timedelta = timedelta(hours=4), now: datetime | None = None, *,
                 limit: int = AT_RISK_PAGE, offset: int = 0, overdue: bool = True) -> AtRisk:
    """Running clocks past or near their due time, the most urgent (soonest due) first: one page of
    them and how many there are. A page, because on a bad day there are thousands (10,000 in the
    benchmark's data) and a list that long is read a page at a time anyway; the running clocks'
    index by due time (`running_by_due`) hands the page over in order, without reading the rest. `overdue`
    False: only the clocks not yet past due (the console's board: those can still be saved)."""
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset are counts: 0 or more")
    now = now or datetime.now(UTC)
    due_by = [iso(now + within)] + ([] if overdue else [iso(now)])
    where = AT_RISK_FROM + ("" if overdue else " AND k.due > ?")
    with view.reading() as query:
        total = query("SELECT COUNT(*) AS n " + where, due_by)[0]["n"]
        rows = query(f"""
            SELECT k.case_id, c.priority, c.tier, c.stage, c.assignee, k.clock, k.due, k.breached,
                   c.escalation_level
            {where}
            ORDER BY k.due, k.case_id, k.clock LIMIT {int(limit)} OFFSET {int(offset)}""", due_by) if limit else []
    return AtRisk(rows, total)


def at_risk(view: ReportView, within: timedelta = timedelta(hours=4), now: datetime | None = None) -> list[dict]:
    """Every running clock past or near its due time, the most urgent first (the CLI's whole list,
    in one statement, so it is one consistent reading)."""
    now = now or datetime.now(UTC)
    return view.query(f"""
        SELECT k.case_id, c.priority, c.tier, c.stage, c.assignee, k.clock, k.due, k.breached,
               c.escalation_level
        {AT_RISK_FROM}
        ORDER BY k.due, k.case_id, k.clock""", [iso(now + within)])


REPORTS = {"sla": sla_compliance, "next_replies": next_replies, "times": response_times, "outcomes": outcomes, "backlog": backlog,
           "satisfaction": satisfaction, "complaints": complaints, "escalations": escalations,
           "agents": agents}
