"""`import_log`: an event log into the case store, trace by trace, each case written whole in one
transaction (domain/store.py `import_case`), so the import is idempotent (a case already imported is
left as it is) and resumable (an interrupted import, run again, completes the cases not yet written).

Closed cases become history; open ones are listed so that `start_live` starts their workflows, which
continue from the store with their clocks running."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from eventsourcing.persistence import IntegrityError
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from tqdm import tqdm

from casework.importer.logs import Problem, Trace, read_traces
from casework.importer.mapping import Mapping, load_mapping
from casework.importer.plan import Planner, Refused, TracePlan
from domain.ids import workflow_id_for
from domain.sla import SlaPolicy
from domain.store import CaseStore
from workflows.contract import WORKFLOW_TYPE, CaseInput, Limits


# Cases written per transaction: a commit per case would be most of the import's time.
BATCH = 50


@dataclass
class Summary:
    """What an import did. `refused` lists every command the domain (or the planner) refused."""

    traces: int = 0
    imported: int = 0  # cases written by this run
    already: int = 0  # cases a previous run wrote (left as they are)
    closed: int = 0  # of the imported and already imported: history
    open_case_ids: list[str] = field(default_factory=list)  # to continue as live workflows
    commands: int = 0
    events: int = 0
    rows: int = 0
    refused: list[Refused] = field(default_factory=list)
    not_imported: list[Problem] = field(default_factory=list)  # traces left out whole, and why
    seconds: float = 0.0

    @property
    def refused_by_activity(self) -> Counter[tuple[str, str]]:
        return Counter((r.activity, r.code) for r in self.refused)

    def report(self) -> str:
        lines = [f"traces {self.traces}: imported {self.imported}, already imported {self.already}, "
                 f"not imported {len({p.case for p in self.not_imported})}",
                 f"cases closed (history) {self.closed}, open (continue live) {len(self.open_case_ids)}",
                 f"rows {self.rows}, commands {self.commands}, events {self.events} in {self.seconds:.1f} s"
                 + (f" ({self.events / self.seconds:.0f} events/s)" if self.seconds else "")]
        if self.refused:
            lines.append(f"refused {len(self.refused)} command(s):")
            lines += [f"  {activity}: {code} x{n}" for (activity, code), n in sorted(self.refused_by_activity.items())]
        if self.not_imported:
            lines.append("not imported:")
            lines += [f"  case {p.case or '?'}, {p.where}: {p.message}" for p in self.not_imported[:50]]
            if len(self.not_imported) > 50:
                lines.append(f"  ... and {len(self.not_imported) - 50} more")
        return "\n".join(lines)


def import_log(log: str | Path | list[Trace], mapping: Mapping | str | Path, store: CaseStore,
               policy: SlaPolicy | None, progress: bool = False, limit: int | None = None) -> Summary:
    """Import `log` (CSV or XES) as `mapping` says into `store`, deciding each command by the domain's
    rules at its recorded instant with the SLA terms `policy` pins. `limit`: the first N traces only.
    `log` may be its traces read already (`read_traces`), as the CLI does before it opens a store."""
    started = time.perf_counter()
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    traces = (log if isinstance(log, list) else read_traces(log, mapping))[:limit]
    planner, summary = Planner(mapping, policy), Summary(traces=len(traces))
    batch: list[tuple[Trace, TracePlan]] = []
    for trace in tqdm(traces, unit="case", desc="import", disable=not progress, mininterval=0.5):
        if trace.problems or not trace.rows:
            summary.not_imported += trace.problems
            continue
        try:
            case_id, opening_id = planner.identity(trace)
        except ValueError as err:
            summary.not_imported.append(Problem(trace.case, trace.rows[0].where, str(err)))
            continue
        known = store.command_ids(case_id) if case_id else None
        if known is not None:
            if opening_id in known:
                summary.already += 1
                _count_state(summary, store, case_id)
            else:
                summary.not_imported.append(Problem(trace.case, trace.rows[0].where, (
                    f"case {case_id} exists in the store and was not opened by an import of this log")))
            continue
        plan = planner.plan(trace)
        if plan.problem:
            summary.not_imported.append(Problem(trace.case, plan.where or trace.rows[0].where, plan.problem))
            continue
        batch.append((trace, plan))
        if len(batch) >= BATCH:
            _write(store, batch, summary)
    _write(store, batch, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _write(store: CaseStore, batch: list[tuple[Trace, TracePlan]], summary: Summary) -> None:
    """The batch's cases in one transaction; if one was written meanwhile, each on its own."""
    try:
        store.import_cases([plan.events for _, plan in batch])
        written = batch
    except IntegrityError:
        written = []
        for trace, plan in batch:
            try:
                store.import_cases([plan.events])
                written.append((trace, plan))
            except IntegrityError:  # written meanwhile by another import or a live opening
                summary.not_imported.append(Problem(trace.case, trace.rows[0].where,
                                                    f"case {plan.case_id} was written by someone else meanwhile"))
    for trace, plan in written:
        summary.imported += 1
        summary.rows += len(trace.rows)
        summary.commands += plan.commands
        summary.events += len(plan.events)
        summary.refused += plan.refused
        if plan.state.is_closed:
            summary.closed += 1
        else:
            summary.open_case_ids.append(plan.case_id)
    batch.clear()


def _count_state(summary: Summary, store: CaseStore, case_id: str) -> None:
    state = store.state(case_id)
    if state is not None and state.is_closed:
        summary.closed += 1
    else:
        summary.open_case_ids.append(case_id)


async def start_live(client: Client, store: CaseStore, case_ids: list[str], task_queue: str,
                     limits: Limits | None = None) -> int:
    """Start the workflow of each open imported case (the workflow id names the case), which takes
    the case as the store holds it and runs its clocks from there. A case whose workflow runs or has
    run already is left alone, so this is safe to repeat. Returns how many open cases' workflows run."""
    started = 0
    for case_id in case_ids:
        state = store.state(case_id)
        if state is None or state.is_closed:
            continue
        try:
            await client.start_workflow(
                WORKFLOW_TYPE, CaseInput(state=state, forgot_commands=True, limits=limits or Limits()),
                id=workflow_id_for(case_id), task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
            started += 1
        except WorkflowAlreadyStartedError:
            continue  # it ran and closed: the store has its history
    return started
