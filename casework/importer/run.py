"""`import_log`: an event log into the case store, trace by trace, each trace's cases written whole in
one transaction (domain/store.py `import_cases`), so the import is idempotent (every row's commands
have ids derived from the row's content: a row stored already adds nothing) and resumable (an
interrupted import, run again, completes the cases not yet written). A later export of the same
cases, with more rows, continues each stored case from its stored state (docs/import.md).

Closed cases become history; open ones are listed so that `start_live` starts their workflows, which
continue from the store with their clocks running."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eventsourcing.persistence import IntegrityError
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from tqdm import tqdm

from casework.importer.logs import Problem, Trace, read_traces
from casework.importer.mapping import Mapping, load_mapping
from casework.importer.plan import Changed, Planner, Refused, StoredCase, TracePlan
from domain.events import Event
from domain.lifecycle import replay_on
from domain.refusal import in_words
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
    imported: int = 0  # traces whose case this run wrote first
    continued: int = 0  # traces whose stored case(s) this run added rows to
    already: int = 0  # traces a previous run stored whole (nothing added)
    follow_ups: int = 0  # follow-up cases this run opened (work after a reopen window, docs/import.md)
    closed: int = 0  # of the cases of the traces (follow-ups too): history
    open_case_ids: list[str] = field(default_factory=list)  # to continue as live workflows
    commands: int = 0
    events: int = 0
    rows: int = 0
    refused: list[Refused] = field(default_factory=list)
    # Rows an earlier import stored that the mapping now plans otherwise (kept as stored).
    changed: list[Changed] = field(default_factory=list)
    not_imported: list[Problem] = field(default_factory=list)  # traces left out whole, and why
    seconds: float = 0.0

    @property
    def refused_by_activity(self) -> Counter[tuple[str, str]]:
        return Counter((r.activity, r.code) for r in self.refused)

    @property
    def changed_by_activity(self) -> Counter[str]:
        return Counter(c.activity for c in self.changed)

    def report(self) -> str:
        lines = [f"traces {self.traces}: imported {self.imported}, continued {self.continued}, "
                 f"already imported {self.already}, not imported {len({p.case for p in self.not_imported})}",
                 f"cases closed (history) {self.closed}, open (continue live) {len(self.open_case_ids)}, "
                 f"follow-up cases opened {self.follow_ups}",
                 f"rows {self.rows}, commands {self.commands}, events {self.events} in {self.seconds:.1f} s"
                 + (f" ({self.events / self.seconds:.0f} events/s)" if self.seconds else "")]
        if self.refused:
            lines.append(f"refused {len(self.refused)} command(s):")
            lines += [f"  {activity}: {code} x{n}" for (activity, code), n in sorted(self.refused_by_activity.items())]
        if self.changed:
            lines.append(f"stored rows the mapping now plans otherwise (kept as stored) {len(self.changed)}:")
            lines += [f"  {activity}: x{n}" for activity, n in sorted(self.changed_by_activity.items())]
        if self.not_imported:
            lines.append("not imported:")
            lines += [f"  case {p.case or '?'}, {p.where}: {p.message}" for p in self.not_imported[:50]]
            if len(self.not_imported) > 50:
                lines.append(f"  ... and {len(self.not_imported) - 50} more")
        return "\n".join(lines)


def import_log(log: str | Path | list[Trace], mapping: Mapping | str | Path, store: CaseStore,
               policy: SlaPolicy | None, progress: bool = False, limit: int | None = None,
               live: Callable[[str], bool] | None = None) -> Summary:
    """Import `log` (CSV or XES) as `mapping` says into `store`, deciding each command by the domain's
    rules at its recorded instant with the SLA terms `policy` pins. `limit`: the first N traces only.
    `log` may be its traces read already (`read_traces`), as the CLI does before it opens a store.
    `live(case_id)`: whether a stored case's workflow was started (the engine owns it); without it, a
    stored case is live when its stream holds anything the engine decided (`stored_case`)."""
    started = time.perf_counter()
    mapping = mapping if isinstance(mapping, Mapping) else load_mapping(mapping)
    traces = (log if isinstance(log, list) else read_traces(log, mapping))[:limit]
    planner, summary = Planner(mapping, policy), Summary(traces=len(traces))
    batch: list[tuple[Trace, TracePlan]] = []

    def replan(trace: Trace) -> TracePlan:
        """The trace planned again on what the store holds now (after another writer's commit)."""
        lookup = functools.cache(lambda cid: stored_case(store, cid, live))
        case_id, opening_id = planner.identity(trace)
        known = lookup(case_id)
        if known is not None and all(e.command_id != opening_id for e in known.history):
            return TracePlan(trace.case, case_id,
                             problem=f"case {case_id} was written meanwhile, not by an import of this log")
        return planner.plan(trace, lookup)

    for trace in tqdm(traces, unit="case", desc="import", disable=not progress, mininterval=0.5):
        if trace.problems or not trace.rows:
            summary.not_imported += trace.problems
            continue
        try:
            case_id, opening_id = planner.identity(trace)
        except ValueError as err:  # pydantic's ValidationError too (a case id too long): said in words
            summary.not_imported.append(Problem(trace.case, trace.rows[0].where,
                                                f"the case's identity does not validate: {in_words(err)}"))
            continue
        lookup = functools.cache(lambda cid: stored_case(store, cid, live))
        known = lookup(case_id) if case_id else None
        if known is not None:
            if all(e.command_id != opening_id for e in known.history):
                summary.not_imported.append(Problem(trace.case, trace.rows[0].where, (
                    f"case {case_id} exists in the store and was not opened by an import of this log")))
                continue
            if mapping.plan.command_attribute:  # a casework export: its commands carry their own ids
                summary.already += 1
                _count_state(summary, store, case_id)
                continue
        plan = planner.plan(trace, lookup)
        if plan.problem:
            summary.not_imported.append(Problem(trace.case, plan.where or trace.rows[0].where, plan.problem))
            continue
        if known is not None and not plan.events:  # stored whole already: nothing to write
            summary.already += 1
            summary.refused += plan.refused
            summary.changed += plan.changed
            _count_cases(summary, plan)
            continue
        batch.append((trace, plan))
        if len(batch) >= BATCH:
            _write(store, batch, summary, replan)
    _write(store, batch, summary, replan)
    summary.seconds = time.perf_counter() - started
    return summary


def stored_case(store: CaseStore, case_id: str, live: Callable[[str], bool] | None = None) -> StoredCase | None:
    """The case as the store holds it, for a re-import, and whether the engine owns it (live): its
    stream holds an event decided by anything but an import (the engine's timers, a live command);
    or it is open and `live(case_id)` says its workflow was started (the command line asks the
    engine). A closed case with only imported events never ran live: its history continues."""
    history = store.history(case_id)  # one read: the state is its replay
    if not history:
        return None
    state = replay_on(None, history)
    engine_owned = any(not e.command_id.removeprefix("follow-up:").startswith("import:") for e in history) or (
        not state.is_closed and live is not None and live(case_id))
    return StoredCase(state=state, history=history, live=engine_owned)


def _write(store: CaseStore, batch: list[tuple[Trace, TracePlan]], summary: Summary,
           replan: Callable[[Trace], TracePlan]) -> None:
    """The batch's cases in one transaction; if one was written meanwhile, each on its own: a case
    written meanwhile is planned again on what the store holds now (another import of the same log
    stored it whole: already imported; it stored part of it: the rest is written)."""
    try:
        store.import_cases(*_histories(batch), stored_at=datetime.now(UTC))
        written = batch
    except IntegrityError:
        written = []
        for trace, plan in batch:
            for _ in range(2):
                try:
                    store.import_cases(*_histories([(trace, plan)]), stored_at=datetime.now(UTC))
                    written.append((trace, plan))
                    break
                except IntegrityError:  # written meanwhile by another import, a live opening or command
                    plan = replan(trace)
                    if plan.problem:
                        summary.not_imported.append(Problem(trace.case, plan.where or trace.rows[0].where,
                                                            plan.problem))
                        break
                    if not plan.events:  # the other writer stored it whole
                        summary.already += 1
                        summary.refused += plan.refused
                        summary.changed += plan.changed
                        _count_cases(summary, plan)
                        break
            else:
                summary.not_imported.append(Problem(trace.case, trace.rows[0].where,
                                                    f"case {plan.case_id} was written by someone else meanwhile"))
    for trace, plan in written:
        if plan.cases[plan.case_id].after:
            summary.continued += 1
        else:
            summary.imported += 1
        summary.rows += len(trace.rows)
        summary.commands += plan.commands
        summary.events += len(plan.events)
        summary.follow_ups += plan.follow_ups
        summary.refused += plan.refused
        summary.changed += plan.changed
        _count_cases(summary, plan)
    batch.clear()


def _histories(batch: list[tuple[Trace, TracePlan]]) -> tuple[list[list[Event]], list[tuple[str, int, list[Event]]]]:
    """The new cases' whole histories, and the events that continue stored cases (after their version)."""
    new, continued = [], []
    for _, plan in batch:
        for case in plan.cases.values():
            if case.events and case.after:
                continued.append((case.case_id, case.after, case.events))
            elif case.events:
                new.append(case.events)
    return new, continued


def _count_cases(summary: Summary, plan: TracePlan) -> None:
    for case in plan.cases.values():
        if case.state is not None and case.state.is_closed:
            summary.closed += 1
        elif case.state is not None:
            summary.open_case_ids.append(case.case_id)


def _count_state(summary: Summary, store: CaseStore, case_id: str) -> None:
    state = store.state(case_id)
    if state is not None and state.is_closed:
        summary.closed += 1
    else:
        summary.open_case_ids.append(case_id)


@dataclass(frozen=True)
class LiveStarts:
    """What `start_live` did: workflows it started, and open cases whose workflow had been started
    before (running, or run and closed: the store has its history). `seconds`: how long it took."""

    started: int = 0
    already: int = 0
    seconds: float = 0.0


# Workflow starts in flight at once. Each start is one round trip to the server (the workflow's first
# task then runs on the worker): one at a time, the hand-over of many open cases waits on the round
# trips; a few dozen keep the server busy without flooding the worker's task queue (a shared dev server
# on 2 cores takes about as many starts per second at 16 as at 64).
START_CONCURRENCY = 16


async def start_live(client: Client, store: CaseStore, case_ids: list[str], task_queue: str,
                     limits: Limits | None = None, concurrency: int = START_CONCURRENCY,
                     progress: Callable[[int], None] | None = None) -> LiveStarts:
    """Start the workflow of each open imported case (the workflow id names the case), which takes
    the case as the store holds it and runs its clocks from there; up to `concurrency` starts in
    flight at once. A case whose workflow runs or has run already is left alone (counted `already`),
    so this is safe to repeat, and to run again after an interruption: it starts the rest. A start
    that fails for another reason stops the hand-over and is raised (a start cut off in flight may
    have been taken: run again, it is counted `already`).
    `progress(n)`: called after each case handled (started or already), with the count so far."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    began, pending = time.perf_counter(), iter(case_ids)
    started = already = 0

    async def start_one(case_id: str) -> None:
        nonlocal started, already
        state = store.state(case_id)
        if state is None or state.is_closed:
            return
        try:
            await client.start_workflow(
                WORKFLOW_TYPE, CaseInput(state=state, forgot_commands=True, limits=limits or Limits()),
                id=workflow_id_for(case_id), task_queue=task_queue,
                # FAIL (not USE_EXISTING): a running workflow is told apart from one started now.
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
            started += 1
        except WorkflowAlreadyStartedError:
            already += 1  # it runs, or it ran and closed: the store has its history
        if progress is not None:
            progress(started + already)

    async def lane() -> None:
        # Each lane takes the next case when its start is answered: bounded, in the list's order.
        for case_id in pending:
            await start_one(case_id)

    lanes = [asyncio.ensure_future(lane()) for _ in range(min(concurrency, max(1, len(case_ids))))]
    try:
        await asyncio.gather(*lanes)
    except BaseException:
        for task in lanes:  # the other lanes stop now
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        raise
    return LiveStarts(started=started, already=already, seconds=time.perf_counter() - began)
