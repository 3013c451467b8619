"""Listing cases from the read models: filters and cursor pagination (the HTTP API's `GET /cases`).

Newest first (opened_at, then case_id, both descending); the cursor is the last row's key, so a page
follows from where the previous one ended however many cases open meanwhile (keyset pagination,
no OFFSET). Every filter but the subject text is SQL over `cases` and `sla_clocks`; the subject is
sealed (projections/subjects.py), so that filter opens each candidate's subject and matches it here,
reading candidates in chunks until the page is full.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from projections.rows import iso
from projections.schema import CLOCK_NAMES


class BadCursor(ValueError):
    """A cursor this listing did not hand out (or one damaged on the way)."""


# A year: far beyond any SLA target, and `now + timedelta(hours=...)` stays a datetime (infinity does not).
AT_RISK_MAX_HOURS = 24 * 365


class CaseFilter(BaseModel):
    stage: list[str] = Field(default_factory=list)  # any of these
    team: str | None = None
    assignee: str | None = None
    priority: list[str] = Field(default_factory=list)
    category: list[str] = Field(default_factory=list)
    customer_id: str | None = None
    breached: bool | None = None  # some clock breached (True) or none (False)
    # a running, unbreached clock due by then
    at_risk_within_hours: float | None = Field(default=None, gt=0, le=AT_RISK_MAX_HOURS)
    text: str | None = None  # in the subject, case-insensitive
    # An agent's reach (casework/access.py): cases assigned to `reach_assignee` or in one of `reach_teams`.
    reach_assignee: str | None = None
    reach_teams: list[str] = Field(default_factory=list)


class Page(BaseModel):
    rows: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(opened_at: str, case_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([opened_at, case_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("the cursor is not one this listing handed out") from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise BadCursor("the cursor is not one this listing handed out")
    return value[0], value[1]


BREACHED = " OR ".join(f"c.{name}_breached = 1" for name in CLOCK_NAMES)


def _where(f: CaseFilter, now: datetime) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (("stage", f.stage), ("priority", f.priority), ("category", f.category)):
        if values:
            clauses.append(f"c.{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    for column, value in (("team", f.team), ("assignee", f.assignee), ("customer_id", f.customer_id)):
        if value is not None:
            clauses.append(f"c.{column} = ?")
            params.append(value)
    if f.reach_assignee is not None:
        teams = f"c.team IN ({', '.join('?' for _ in f.reach_teams)})" if f.reach_teams else "0 = 1"
        clauses.append(f"(c.assignee = ? OR {teams})")
        params.extend([f.reach_assignee, *f.reach_teams])
    if f.breached is not None:
        clauses.append(f"({BREACHED})" if f.breached else f"NOT ({BREACHED})")
    if f.at_risk_within_hours is not None:
        # Due is an instant (the clock's business calendar already applied when it was projected);
        # a clock past due whose breach is not projected yet is at risk too.
        clauses.append("c.stage <> 'closed' AND EXISTS (SELECT 1 FROM {sla_clocks} k WHERE k.case_id = c.case_id "
                       "AND k.state = 'running' AND k.breached = 0 AND k.due IS NOT NULL AND k.due <= ?)")
        params.append(iso(now + timedelta(hours=f.at_risk_within_hours)))
    return clauses, params


def list_cases(view: Any, f: CaseFilter, *, limit: int, cursor: str | None, now: datetime,
               subject_of: Callable[[str, str | None], str | None]) -> Page:
    """One page of cases matching `f`, newest first; `subject_of(case_id, token)` opens a subject."""
    clauses, params = _where(f, now)
    after = decode_cursor(cursor) if cursor else None
    text = f.text.casefold() if f.text else None
    chunk = limit + 1 if text is None else max(4 * limit, 50)
    rows: list[dict[str, Any]] = []
    more = False
    while True:
        where = list(clauses)
        args = list(params)
        if after is not None:
            where.append("(c.opened_at < ? OR (c.opened_at = ? AND c.case_id < ?))")
            args.extend([after[0], after[0], after[1]])
        if text is not None:
            where.append("s.subject IS NOT NULL")
        found = view.query(
            "SELECT c.*, s.subject AS sealed_subject, (SELECT MIN(k.due) FROM {sla_clocks} k WHERE "
            "k.case_id = c.case_id AND k.state = 'running' AND k.breached = 0) AS next_due "
            "FROM {cases} c LEFT JOIN {case_subjects} s ON s.case_id = c.case_id"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY c.opened_at DESC, c.case_id DESC LIMIT {int(chunk)}", args)
        for row in found:
            row["subject"] = subject_of(row["case_id"], row.pop("sealed_subject"))
            if text is not None and (row["subject"] is None or text not in row["subject"].casefold()):
                continue
            if len(rows) == limit:
                more = True
                break
            rows.append(row)
        if more or len(found) < chunk:
            break
        after = (found[-1]["opened_at"], found[-1]["case_id"])
    next_cursor = encode_cursor(rows[-1]["opened_at"], rows[-1]["case_id"]) if more and rows else None
    return Page(rows=rows, next_cursor=next_cursor)
