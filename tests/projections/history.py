"""Report figures computed from the raw events, not through evolve or the projection."""

from __future__ import annotations

from collections import Counter, defaultdict
from statistics import quantiles

from casework.history import write_history  # noqa: F401 - the tests' history comes from here
from domain.store import CaseStore


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
        # docs/sla.md: the desk's first answer is a response, a question back, or a solution.
        first = next((e for e in history if e.type in ("ResponseSent", "ClarificationRequested",
                                                       "SolutionProposed")), None)
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
