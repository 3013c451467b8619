"""What-if: the stored history re-decided under a draft SLA policy, in memory, nothing written.

Every case opened in [since, until) is re-decided twice (domain/redecide.py): under the terms the
case actually pinned (as recorded; "current") and under the draft policy ("draft"), with the clocks
evaluated up to `until` (default: now). The comparison counts, per priority, team and month (the
month the case opened):

- cases: cases held to an SLA;
- breached: cases with a clock breached; compliance_pct: the share without one (the `sla` report's
  measure);
- breaches: clock breaches (a case can breach several clocks and next-response cycles);
- escalations: escalations the policy brought (breaches, escalating warnings, emergencies);
  a supervisor's own escalations are people's decisions, not the policy's, and are not counted.

    casework simulate --policy draft.toml [--against current.toml] [--since 2026-03-01T00:00+08:00]
                      [--until 2026-04-01T00:00+08:00] [--json]

(`python -m casework.simulate ...` is the same command.)
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

from pydantic import BaseModel

from domain import events as e
from domain.evolve import replay
from domain.redecide import redecide
from domain.sla import SlaPolicy, SlaTerms
from domain.store import CaseStore, is_case_event

GROUPS = ("priority", "team", "month")
POLICY_ESCALATIONS = ("breach", "warning", "emergency")


class Outcome(BaseModel):
    """One case under one policy."""

    breaches: int = 0
    escalations: int = 0


class Row(BaseModel):
    group: str  # priority, team or month
    value: str
    cases: int = 0
    breached_current: int = 0
    breached_draft: int = 0
    compliance_pct_current: float = 100.0
    compliance_pct_draft: float = 100.0
    breaches_current: int = 0
    breaches_draft: int = 0
    escalations_current: int = 0
    escalations_draft: int = 0


class Simulation(BaseModel):
    draft_version: str
    against_version: str | None  # None: the terms each case pinned
    since: datetime | None
    until: datetime
    cases: int
    rows: list[Row]


def case_histories(store: CaseStore, page: int = 2000) -> Iterator[list[e.Event]]:
    """Every case's stored history, in the order it was stored (one pass over the notification log)."""
    by_case: dict[str, list[e.Event]] = defaultdict(list)
    after = 0
    while True:
        batch = store.recorder.select_notifications(after, page, inclusive_of_start=False)
        if not batch:
            break
        for n in batch:
            if is_case_event(n.topic):
                fact = e.EVENT_ADAPTER.validate_python(store.mapper.to_domain_event(n).fact)
                by_case[fact.case_id].append(fact)
        after = batch[-1].id
    yield from by_case.values()


def outcome(events: list[e.Event]) -> Outcome:
    return Outcome(breaches=sum(isinstance(x, e.SlaClockBreached) for x in events),
                   escalations=sum(isinstance(x, e.CaseEscalated) and x.cause in POLICY_ESCALATIONS
                                   for x in events))


def simulate(store: CaseStore, draft: SlaPolicy, since: datetime | None = None,
             until: datetime | None = None, against: SlaPolicy | None = None) -> Simulation:
    """`against`: the policy of the "now" column; None: the terms each case pinned, as recorded."""
    until = until or datetime.now(UTC)

    def as_recorded(case, recorded: SlaTerms | None) -> SlaTerms | None:
        if against is not None:
            return against.terms_for(case.priority, case.customer.tier, case.category, case.channel)
        return recorded

    def under_draft(case, _recorded) -> SlaTerms:
        return draft.terms_for(case.priority, case.customer.tier, case.category, case.channel)

    rows: dict[tuple[str, str], Row] = {}
    count = 0
    for history in case_histories(store):
        opened = history[0]
        if not isinstance(opened, e.CaseOpened) or opened.at >= until or (since and opened.at < since):
            continue
        if not any(isinstance(x, e.SlaPolicyPinned) for x in history):
            continue  # held to no SLA (as the `sla` report counts)
        current_events = redecide(history, as_recorded, until)
        draft_events = redecide(history, under_draft, until)
        current, new = outcome(current_events), outcome(draft_events)
        state = replay(current_events)
        assert state is not None
        count += 1
        keys = {"priority": state.priority.value, "team": state.team or "-", "month": opened.at.strftime("%Y-%m")}
        for group in GROUPS:
            row = rows.setdefault((group, keys[group]), Row(group=group, value=keys[group]))
            row.cases += 1
            row.breached_current += current.breaches > 0
            row.breached_draft += new.breaches > 0
            row.breaches_current += current.breaches
            row.breaches_draft += new.breaches
            row.escalations_current += current.escalations
            row.escalations_draft += new.escalations
    for row in rows.values():
        row.compliance_pct_current = round(100.0 * (row.cases - row.breached_current) / row.cases, 1)
        row.compliance_pct_draft = round(100.0 * (row.cases - row.breached_draft) / row.cases, 1)
    ordered = sorted(rows.values(), key=lambda r: (GROUPS.index(r.group), r.value))
    return Simulation(draft_version=draft.version, against_version=against.version if against else None, since=since, until=until, cases=count, rows=ordered)


def table(sim: Simulation) -> str:
    """The side-by-side table the command prints."""
    head = ["group", "value", "cases", "compliance % now", "draft", "breaches now", "draft",
            "escalations now", "draft"]
    cells = [[r.group, r.value, str(r.cases), f"{r.compliance_pct_current:.1f}", f"{r.compliance_pct_draft:.1f}",
              str(r.breaches_current), str(r.breaches_draft), str(r.escalations_current), str(r.escalations_draft)]
             for r in sim.rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(head)]
    baseline = f"policy {sim.against_version}" if sim.against_version else "the terms each case pinned"
    lines = [f"draft policy {sim.draft_version} against {baseline}; {sim.cases} cases, "
             f"clocks evaluated up to {sim.until.isoformat()}",
             "  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


if __name__ == "__main__":  # the same command as `casework simulate` (casework/history_cli.py)
    from casework.cli import main

    sys.exit(main(["simulate", *sys.argv[1:]]))
