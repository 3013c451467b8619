"""Data for the benchmark: an event store of a given size, and read models of a given size."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from casework.history import write_history
from domain.store import CaseStore
from projections.rows import iso
from projections.schema import CLOCK_NAMES
from projections.view import ReportView


def write_cases(store: CaseStore, target_events: int) -> int:
    """Synthetic cases, in chunks, until the store holds at least `target_events` events."""
    seed = 0
    while (store.recorder.max_notification_id() or 0) < target_events:
        write_history(store, cases=200, seed=seed)
        seed += 1
    return store.recorder.max_notification_id() or 0


def write_read_models(view: ReportView, target_events: int) -> dict[str, int]:
    """Rows as `target_events` events would leave them (about 20 events a case), inserted in bulk."""
    rng = random.Random(5)
    cases = target_events // 20
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows: dict[str, list[dict]] = {"cases": [], "sla_clocks": [], "escalations": [], "agent_activity": [],
                                   "surveys": []}
    for i in range(cases):
        cid = str(uuid.UUID(int=rng.getrandbits(128)))
        opened = start + timedelta(minutes=rng.randint(0, 60 * 24 * 700))
        closed = rng.random() < 0.9
        first = opened + timedelta(minutes=rng.randint(1, 600))
        solved = first + timedelta(hours=rng.randint(1, 200))
        breached = {name: int(rng.random() < p) for name, p in
                    (("first_response", 0.1), ("next_response", 0.05), ("resolution", 0.15))}
        rows["cases"].append({
            "case_id": cid, "source_system": "bench", "external_id": str(i),
            "stage": "closed" if closed else rng.choice(["intake", "response", "solution", "follow_up"]),
            "priority": rng.choice(["urgent", "high", "normal", "low"]), "tier": rng.choice("ABC"),
            "category": rng.choice(["enquiry", "fault", "complaint", "warranty"]),
            "channel": rng.choice(["phone", "email", "chat", "web"]), "customer_id": f"c{i % 5000}",
"team": rng.choice(["east", "west", "north"]), "assignee": f"agent-{i % 60}",
            "opened_at": iso(opened), "first_response_at": iso(first), "solved_at": iso(solved),
            "closed_at": iso(solved) if closed else None, "closure_reason": "resolved" if closed else None,
            "first_response_seconds": (first - opened).total_seconds(),
            "first_response_business_seconds": (first - opened).total_seconds() / 2,
            "resolution_seconds": (solved - opened).total_seconds(),
            "resolution_business_seconds": (solved - opened).total_seconds() / 3,
            "escalation_level": rng.choice([0, 0, 0, 1, 2]), "reopen_count": rng.choice([0, 0, 0, 1]),
            "clarification_rounds": rng.choice([0, 1]), "notes_count": 0,
            "first_contact_resolution": int(closed and rng.random() < 0.4), "sla_policy_version": "bench",
            **{f"{name}_breached": breached.get(name, 0) for name in CLOCK_NAMES},
            "satisfaction_score": rng.uniform(40, 100) if closed else None,
            "updated_at": iso(solved), "events": 20})
        for clock, due_h in (("first_response", 8), ("resolution", 48)):
            rows["sla_clocks"].append({
                "case_id": cid, "clock": clock, "cycle": 0, "state": "met" if closed else "running", "target_seconds": due_h * 3600,
                "started_at": iso(opened), "due": iso(opened + timedelta(hours=due_h)),
                "elapsed_business_seconds": 0.0, "paused_seconds": 0.0, "met_at": iso(solved) if closed else None,
                "breached_at": None, "breached": 0, "warned_shares": ""})
        for seq in range(6):
            rows["agent_activity"].append({
                "case_id": cid, "seq": seq + 2, "at": iso(opened + timedelta(hours=seq)),
                "actor_id": f"agent-{rng.randint(0, 59)}", "actor_role": "agent", "event_type": "ResponseSent",
                "stage_after": "response", "team": "east"})
        if rng.random() < 0.2:
            rows["escalations"].append({
                "case_id": cid, "seq": 9, "at": iso(first), "kind": "escalated", "level": 1, "level_name": "team_lead",
                "owner": "lead", "cause": "breach", "clock": "first_response", "reason": "", "actor_id": "casework",
                "actor_role": "system"})
        if closed and rng.random() < 0.3:
            rows["surveys"].append({
                "case_id": cid, "round": 0, "at": iso(solved), "customer_id": f"c{i % 5000}",
                "overall": rng.uniform(40, 100), "scale": "0-100", "original_overall": None, "safety_incident": 0,
                "team": "east", "assignee": "agent-1", "category": "fault"})
    with view.datastore.transaction(commit=True) as c:
        for table, items in rows.items():
            if items:
                cols = list(items[0])
                c.executemany(view.sql(f"INSERT INTO {view.table(table)} ({', '.join(cols)}) VALUES "
                                       f"({', '.join('?' for _ in cols)})"), [list(r.values()) for r in items])
        view.fill_agent_totals(c)  # what the projection keeps as it appends agent_activity rows
    return {table: len(items) for table, items in rows.items()}
