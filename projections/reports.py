"""The reports analysts and supervisors read, as SQL over the reporting tables.

Each report returns rows (dicts) for the terminal, CSV, JSON and the HTML report. Percentiles are
taken in Python so the SQL stays the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
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


def response_times(view: ReportView, by: str = "priority") -> list[dict]:
    """First response and resolution times, p50/p90/p95, in calendar and business hours."""
    group = GROUPS[by]
    rows = view.query(f"""SELECT {group} AS grp, first_response_seconds, first_response_business_seconds,
                                 resolution_seconds, resolution_business_seconds FROM {{cases}}""")
    buckets: dict = defaultdict(list)
    for r in rows:
        buckets[r["grp"]].append(r)
    out = []
    for grp, items in sorted(buckets.items(), key=lambda kv: str(kv[0])):
        row = {by: grp, "cases": len(items)}
        for col in ("first_response_seconds", "first_response_business_seconds", "resolution_seconds",
                    "resolution_business_seconds"):
            values = [i[col] for i in items if i[col] is not None]
            name = col.replace("_seconds", "_hours")
            for label, value in zip(("p50", "p90", "p95"), percentiles(values)):
                row[f"{name}_{label}"] = None if value is None else round(value / 3600, 2)
        out.append(row)
    return out


def percentiles(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = quantiles(values, n=100, method="inclusive")
    return q[49], q[89], q[94]


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
    """Per staff member: actions taken, cases touched, and cases now assigned to them."""
    rows = view.query("""SELECT actor_id AS agent, actor_role AS role, COUNT(*) AS actions,
                                COUNT(DISTINCT case_id) AS cases_touched
                         FROM {agent_activity} GROUP BY actor_id, actor_role ORDER BY 1, 2""")
    assigned = {r["assignee"]: r["n"] for r in view.query(
        "SELECT assignee, COUNT(*) AS n FROM {cases} WHERE closed_at IS NULL AND assignee IS NOT NULL "
        "GROUP BY assignee")}
    return [{**r, "open_assigned": assigned.get(r["agent"], 0)} for r in rows]


def at_risk(view: ReportView, within: timedelta = timedelta(hours=4), now: datetime | None = None) -> list[dict]:
    """Running clocks past or near their due time, the most urgent first."""
    now = now or datetime.now(UTC)
    return view.query("""
        SELECT k.case_id, c.priority, c.tier, c.stage, c.assignee, k.clock, k.due, k.breached,
               c.escalation_level
        FROM {sla_clocks} k JOIN {cases} c ON c.case_id = k.case_id
        WHERE k.state = 'running' AND c.closed_at IS NULL AND k.due <= ?
        ORDER BY k.due, k.case_id""", [iso(now + within)])


REPORTS = {"sla": sla_compliance, "next_replies": next_replies, "times": response_times, "outcomes": outcomes, "backlog": backlog,
           "satisfaction": satisfaction, "complaints": complaints, "escalations": escalations,
           "agents": agents}
