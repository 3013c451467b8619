"""A varied, deterministic synthetic history of cases, written straight into an event store by the
domain rules (as an import would): for tests, the benchmark and trying the reports out."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from casework.policy import load_policy
from domain.commands import COMMAND_ADAPTER, CheckDeadlines, OpenCase
from domain.lifecycle import CommandRefused, decide, replay_on
from domain.model import ENGINE, Actor, Role
from domain.store import CaseStore
from casework.demo import FIELDS, PATHS, actor_for

GATEWAY = Actor(id="gateway", role=Role.system)
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
def write_history(store: CaseStore, cases: int = 60, seed: int = 7) -> list[str]:
    """`cases` cases on random paths (resolved, reopened, escalated, left open...), over 45 days."""
    rng = random.Random(seed)
    policy = load_policy()
    ids = []
    for i in range(cases):
        path = rng.choice(sorted(PATHS))
        now = START + timedelta(days=i % 45, hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
        opening = OpenCase(
            command_id=str(uuid.UUID(int=rng.getrandbits(128))), actor=GATEWAY,
            case_id=str(uuid.UUID(int=rng.getrandbits(128))), subject=f"Synthetic case {i}",
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
                cmd = COMMAND_ADAPTER.validate_python({"kind": kind, "actor": actor, "occurred_at": now,
                                                       "command_id": str(uuid.uuid4()), **FIELDS[kind]})
                events = decide(state, cmd, now)
            except CommandRefused:
                continue  # e.g. a case already escalated to the top by its clocks
            store.append(events[0].command_id, events)
            state = replay_on(state, events)
        ids.append(state.case_id)
    return ids
