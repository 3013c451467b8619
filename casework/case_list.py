"""`casework list`: cases from the reporting table `cases`, filtered. One small query, kept apart so
the listing the HTTP API uses (projections/queries.py) can replace it without touching the CLI.

Only what the reporting tables hold is listed: ids, stage, priority, tier, category, team, assignee,
customer id, times and SLA breaches. Subjects are personal text, which the reporting tables never
keep (docs/security-data.md); `casework show CASE_ID` gives a case's content.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.schema import CLOCK_NAMES
from projections.view import ReportView

COLUMNS = ("case_id", "stage", "priority", "tier", "category", "team", "assignee", "customer_id",
           "opened_at", "closed_at", "escalation_level", "breached")
ANY_BREACH = "(" + " + ".join(f"{n}_breached" for n in CLOCK_NAMES) + ")"


@dataclass(frozen=True)
class CaseFilter:
    stage: str | None = None
    team: str | None = None
    assignee: str | None = None
    priority: str | None = None
    category: str | None = None
    breached: bool | None = None  # True: some SLA clock breached; False: none
    limit: int = 100


def list_cases(view: ReportView, f: CaseFilter) -> list[dict]:
    """Matching cases, newest opened first (then by id, so the order is total)."""
    where, params = [], []
    for column in ("stage", "team", "assignee", "priority", "category"):
        value = getattr(f, column)
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if f.breached is not None:
        where.append(f"{ANY_BREACH} {'>' if f.breached else '='} 0")
    sql = (f"SELECT case_id, stage, priority, tier, category, team, assignee, customer_id, opened_at, closed_at, "
           f"escalation_level, {ANY_BREACH} AS breached FROM {{cases}}"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY opened_at DESC, case_id LIMIT ?")
    rows = view.query(sql, [*params, f.limit])
    for r in rows:
        r["breached"] = bool(r["breached"])
    return rows
