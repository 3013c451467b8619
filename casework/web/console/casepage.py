"""A case as its page shows it, read from the event store (the only home of what people wrote: the
reporting tables keep no free text) through the store that opens sealed fields (casework/stores.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from domain.clocks import ClockView, clock_views
from domain.events import Event
from domain.model import CaseState, Survey
from domain.sla import EscalationLevel
from domain.store import CaseStore

# What each event contributes to the conversation: (kind of entry, field holding the words).
# Customer words, desk words, notes and the steps of the case read in one order: the store's.
SAID = {
    "CaseOpened": ("customer", "description"),
    "CustomerReplied": ("customer", "message"),
    "SolutionRejected": ("customer", "reason"),
    "SolutionConfirmed": ("customer", "comment"),
    "ResponseSent": ("desk", "message"),
    "ClarificationRequested": ("desk", "question"),
    "SolutionProposed": ("desk", "summary"),
    "SolutionRevised": ("desk", "summary"),
    "NoteAdded": ("note", "text"),
    "RectificationRecorded": ("note", "note"),
    "CaseEscalated": ("step", "reason"),
    "EscalationAcknowledged": ("step", "note"),
    "CaseDeEscalated": ("step", "reason"),
    "CaseReassigned": ("step", "reason"),
    "CaseRetriaged": ("step", "reason"),
    "CaseClosed": ("step", "note"),
    "SlaClockBreached": ("step", None),
}


@dataclass
class Entry:
    seq: int
    kind: str  # customer, desk, note, step
    type: str
    at: datetime
    actor: str
    role: str
    text: str
    detail: str  # e.g. the level and owner of an escalation, the new assignee


@dataclass
class CasePage:
    state: CaseState
    entries: list[Entry]
    clocks: list[ClockView]
    ladder: tuple[EscalationLevel, ...]
    surveys: list[Survey]
    zone: ZoneInfo


def _detail(event: Event) -> str:
    data = event.model_dump()
    if event.type == "CaseEscalated":
        return f"L{data['level']} {data.get('level_name') or ''} → {data.get('owner') or '-'}"
    if event.type == "CaseDeEscalated":
        return f"L{data['level']}"
    if event.type == "CaseReassigned":
        return " / ".join(str(x) for x in (data.get("assignee"), data.get("team")) if x)
    if event.type == "SlaClockBreached":
        return str(data.get("clock", ""))
    if event.type == "CaseClosed":
        return str(data["reason"].value if hasattr(data["reason"], "value") else data["reason"])
    return ""


def case_page(store: CaseStore, case_id: str, now: datetime, fallback_zone: ZoneInfo) -> CasePage | None:
    """None when the store knows no such case."""
    history = store.history(case_id)
    if not history:
        return None
    state = store.state(case_id)
    assert state is not None
    entries = []
    for seq, event in enumerate(history, start=1):
        said = SAID.get(event.type)
        if said is None:
            continue
        kind, field = said
        text = (getattr(event, field, "") if field else "") or ""
        if event.type == "CaseClosed" and entries and entries[-1].text == text:
            text = ""  # closing on the customer's confirmation repeats their comment: shown once
        entries.append(Entry(seq=seq, kind=kind, type=event.type, at=event.at, actor=event.actor.id,
                             role=event.actor.role.value, text=text, detail=_detail(event)))
    zone = ZoneInfo(state.sla.calendar.timezone) if state.sla else fallback_zone
    return CasePage(state=state, entries=entries, clocks=clock_views(state, now),
                    ladder=state.sla.ladder if state.sla else (), surveys=list(state.surveys), zone=zone)


def with_headlines(store: CaseStore, rows: list[dict]) -> list[dict]:
    """Queue rows (from the reporting tables, which keep no personal text) with each case's subject
    and customer, read from the store that opens them: `subject`, `customer` (name), `customer_id`.
    A forgotten customer's read "[forgotten]"; a case the store does not hold keeps None."""
    for row in rows:
        state = store.state(row["case_id"])
        row["subject"] = state.subject if state else None
        row["customer"] = state.customer.name if state else None
        row["customer_id"] = state.customer.id if state else None
    return rows
