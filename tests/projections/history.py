"""A varied, deterministic history of cases written straight into an event store by the domain
rules (as an import would), and figures computed from those events without the projection."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from statistics import quantiles

from casework.policy import load_policy
from domain.commands import CheckDeadlines
from domain.lifecycle import CommandRefused, decide, replay_on
from domain.model import Actor, Role
from domain.store import CaseStore
from casework.demo import FIELDS, PATHS, actor_for
from tests.factory import command, open_case

ENGINE = Actor(id="casework", role=Role.system)
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
def write_history(store: CaseStore, cases: int = 60, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    policy = load_policy()
    ids = []
    for i in range(cases):
        path = rng.choice(sorted(PATHS))
        now = START + timedelta(days=i % 45, hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
        opening = open_case(case_id=str(uuid.UUID(int=rng.getrandbits(128))),
                            priority=rng.choice(["urgent", "high", "normal", "low"]),
                            category=rng.choice(["enquiry", "fault", "complaint", "warranty"]),
                            channel=rng.choice(["phone", "email", "chat"]), team=rng.choice(["east", "west"]),
                            customer={"id": f"c{i}", "name": f"Customer {i}", "tier": rng.choice("ABC")})
        terms = policy.terms_for(opening.priority, opening.customer.tier, opening.category, opening.channel)
        events = decide(None, opening, now, terms)
        store.append(opening.command_id, events)
        state = replay_on(None, events)
        for kind in PATHS[path]:
            now += timedelta(minutes=rng.randint(5, 60 * 30))
            tick = decide(state, CheckDeadlines(command_id=str(uuid.uuid4()), actor=ENGINE), now)
            if tick:
                store.append(tick[0].command_id, tick)
                state = replay_on(state, tick)
            actor = actor_for(kind, rng, "cust-1")
            try:
                events = decide(state, command(kind, actor, occurred_at=now, **FIELDS[kind]), now)
            except CommandRefused:
                continue  # e.g. a case already escalated to the top by its clocks
            store.append(events[0].command_id, events)
            state = replay_on(state, events)
        ids.append(state.case_id)
    return ids


def figures_from_events(store: CaseStore, case_ids: list[str]) -> dict:
    """Report figures counted from the raw events, not through evolve or the projection."""
    out: dict = {"stage": {}, "breached": {}, "reopens": {}, "rounds": {}, "escalations": Counter(),
                 "activity": Counter(), "first_response_hours": defaultdict(list), "fcr": 0, "closed": 0,
                 "reopened_cases": 0, "priority": {}}
    stage_after = {"ClarificationRequested": "needs_clarification", "ResponseSent": "response",
                   "SolutionProposed": "solution", "SolutionRevised": "solution", "FollowUpStarted": "follow_up",
                   "SolutionRejected": "response", "CaseClosed": "closed"}
    for cid in case_ids:
        history = store.history(cid)
        opened = history[0]
        stage, priority = "intake", opened.priority.value
        types = Counter(e.type for e in history)
        for e in history:
            if e.type == "CustomerReplied" and e.resumed_stage is not None:
                stage = e.resumed_stage.value
            elif e.type in stage_after:
                stage = stage_after[e.type]
            if e.type == "CaseRetriaged":
                priority = e.priority.value
            if e.type == "CaseEscalated":
                out["escalations"][(e.level, e.cause)] += 1
            if e.actor.role.value in ("agent", "supervisor"):
                out["activity"][e.actor.id] += 1
        first = next((e for e in history if e.type == "ResponseSent"), None)
        if first is not None:
            out["first_response_hours"][priority].append((first.at - opened.at).total_seconds() / 3600)
        out["stage"][cid] = stage
        out["priority"][cid] = priority
        out["breached"][cid] = sorted({e.clock for e in history if e.type == "SlaClockBreached"})
        out["reopens"][cid] = types["SolutionRejected"]
        out["rounds"][cid] = types["ClarificationRequested"]
        if stage == "closed":
            out["closed"] += 1
            out["reopened_cases"] += types["SolutionRejected"] > 0
            closing = next(e for e in history if e.type == "CaseClosed")
            out["fcr"] += (closing.reason.value.startswith("resolved") and types["SolutionRejected"] == 0
                           and types["ClarificationRequested"] == 0)
    return out


def p50(values: list[float]) -> float:
    return values[0] if len(values) == 1 else quantiles(values, n=100, method="inclusive")[49]
