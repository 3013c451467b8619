"""`casework list`: cases from the read models, filtered: the HTTP API's listing (projections/queries.py,
`GET /cases`) with the filters a command line gives, one page, as rows for a table or JSON.

Subjects are personal text: the reporting tables keep them sealed with the customer's key, so they
are shown only where the keyring is at hand (the engine's data directory), and never once the
customer is forgotten (docs/security-data.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from projections import queries, subjects
from projections.schema import CLOCK_NAMES
from projections.view import ReportView

COLUMNS = ("case_id", "stage", "priority", "tier", "category", "team", "assignee", "customer_id",
           "opened_at", "closed_at", "escalation_level", "breached")


@dataclass(frozen=True)
class CaseFilter:
    stage: str | None = None
    team: str | None = None
    assignee: str | None = None
    priority: str | None = None
    category: str | None = None
    breached: bool | None = None  # True: some SLA clock breached; False: none
    limit: int = 100


def list_cases(view: ReportView, f: CaseFilter, sealer: Any = None) -> list[dict]:
    """Matching cases, newest opened first; with their subjects when `sealer` (the keyring) is given."""
    page = queries.list_cases(
        view, queries.CaseFilter(stage=[f.stage] if f.stage else [], team=f.team, assignee=f.assignee,
                                 priority=[f.priority] if f.priority else [],
                                 category=[f.category] if f.category else [], breached=f.breached),
        limit=f.limit, cursor=None, now=datetime.now(UTC),
        subject_of=lambda case_id, token: subjects.unseal(sealer, case_id, token))
    out = []
    for row in page.rows:
        shown = {c: row.get(c) for c in COLUMNS if c != "breached"}
        shown["breached"] = any(row.get(f"{n}_breached") for n in CLOCK_NAMES)
        if sealer is not None:
            shown["subject"] = row.get("subject")
        out.append(shown)
    return out
