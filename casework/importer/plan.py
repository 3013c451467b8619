"""Planning a trace: the legal commands that take its case through the stages its rows name, each
decided by the domain's rules at the row's recorded instant (domain/decide.py evaluates the SLA
clocks as of that instant first, so a warning or breach lands when it really fell due).

The planner knows the stage graph the domain allows (docs/import.md, "How a stage is reached"): a
first response ends intake, a customer reply ends a wait, a solution is proposed before it is
confirmed, a rejected solution precedes more work after a proposed one. Work after a close is
decided by the domain's reopen rule: a reopen within the window, a follow-up case after it. Whatever
the domain still refuses is reported with its code and the trace goes on with its next row.

A row's commands have ids from the row's identity (logs.row_key: case, activity, instant), so a
later export of the same case is planned against what the store holds (`StoredCase`): stored rows
add nothing, later rows continue the stored state, and a row that would rewrite stored history is
refused (docs/import.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from pydantic import ValidationError

from casework.importer.logs import Row, Trace, row_key
from casework.importer.mapping import Entry, Mapping
from domain.commands import COMMAND_ADAPTER, Command, OpenCase
from domain.events import Event
from domain.ids import case_id_for
from domain.lifecycle import CommandRefused, decide, replay_on
from domain.model import ENGINE, Actor, CaseState, ClosureReason, Role, SourceRef, Stage
from domain.refusal import in_words
from domain.reopen import follow_up_case_id, follow_up_opening
from domain.sla import SlaPolicy

S = Stage
# The next command on the way from a stage to a target stage (closed: a resolved closure; other
# closures are one `close`). A closed case goes back to work only by the customer's rejection
# (`_reject_closed`, as reopen_after_close says); otherwise the stage's own command is sent and the
# domain refuses it with its own code (`case_closed`).
_NEXT: dict[Stage, dict[Stage, str]] = {
    S.closed: {S.intake: "propose_solution", S.response: "propose_solution",
               S.needs_clarification: "record_customer_reply", S.solution: "confirm_solution",
               S.follow_up: "confirm_solution"},
    S.response: {S.intake: "respond", S.needs_clarification: "record_customer_reply",
                 S.solution: "reject_solution", S.follow_up: "reject_solution"},
    S.needs_clarification: {S.intake: "request_clarification", S.response: "request_clarification",
                            S.solution: "request_clarification", S.follow_up: "reject_solution"},
    S.solution: {S.intake: "propose_solution", S.response: "propose_solution",
                 S.needs_clarification: "record_customer_reply", S.follow_up: "revise_solution"},
    S.follow_up: {S.intake: "propose_solution", S.response: "propose_solution",
                  S.needs_clarification: "record_customer_reply", S.solution: "start_follow_up"},
}
_FROM_CLOSED = {S.response: "respond", S.needs_clarification: "request_clarification",
                S.solution: "propose_solution", S.follow_up: "propose_solution"}
# What a planned command says, from the row that caused it.
_TEXT = {"respond": "message", "request_clarification": "question", "record_customer_reply": "message",
         "propose_solution": "summary", "revise_solution": "summary", "confirm_solution": "comment",
         "reject_solution": "reason", "close": "note", "add_note": "text"}
_CUSTOMERS = frozenset({"record_customer_reply", "confirm_solution", "reject_solution"})
MAX_STEPS = 8  # the longest way between two stages is 3 commands; more is a loop


class _Invalid(Exception):
    """A command a row plans does not validate: the trace is left out (`TracePlan.problem`)."""

    def __init__(self, row: Row, message: str) -> None:
        super().__init__(message)
        self.row, self.message = row, message


@dataclass(frozen=True)
class Refused:
    case: str
    where: str
    activity: str
    command: str
    code: str
    message: str


@dataclass(frozen=True)
class Changed:
    """A row stored by an earlier import that the mapping now plans differently: its stored history
    is kept as it is (history is not rewritten), and the summary says so."""

    case: str
    where: str
    activity: str


@dataclass
class CasePlan:
    """What a trace writes to one case: the trace's own case, or a follow-up case it opened."""

    case_id: str
    after: int = 0  # the stored version its new events follow; 0: a case new to the store
    events: list[Event] = field(default_factory=list)
    state: CaseState | None = None


@dataclass
class TracePlan:
    case: str
    case_id: str = ""  # the trace's own case (its follow-ups are in `cases`)
    cases: dict[str, CasePlan] = field(default_factory=dict)  # in the order the trace reached them
    commands: int = 0
    sent: list[Command] = field(default_factory=list)  # the commands decided, in order (the opening first)
    refused: list[Refused] = field(default_factory=list)
    changed: list[Changed] = field(default_factory=list)
    follow_ups: int = 0  # follow-up cases this plan opens
    problem: str = ""  # the trace cannot be imported at all (its opening does not validate or is refused)
    where: str = ""  # the row the problem is at (said once, by whoever reports it)

    @property
    def events(self) -> list[Event]:
        """Every event the plan writes, case after case."""
        return [e for case in self.cases.values() for e in case.events]

    @property
    def state(self) -> CaseState | None:
        """The state of the last case the trace reached (its own, or its last follow-up)."""
        return next(reversed(self.cases.values())).state if self.cases else None


@dataclass
class StoredCase:
    """A case the store holds already, as a re-import finds it."""

    state: CaseState
    history: list[Event]
    live: bool = False  # handed over to the engine: its workflow owns it now

    def __post_init__(self) -> None:
        self.last_at = max(e.at for e in self.history)
        self.commands: dict[str, list[tuple[str, str]]] = {}  # row key -> its stored commands (id, digest)
        self._ends: dict[str, int] = {}  # row key -> position after its last stored event
        self._starts: dict[str, int] = {}  # row key -> position of its first stored event
        for i, event in enumerate(self.history):
            key = row_of(event.command_id)
            if key is not None:
                pair = (event.command_id, event.command_digest)
                if pair not in self.commands.setdefault(key, []):
                    self.commands[key].append(pair)
                self._starts.setdefault(key, i)
                self._ends[key] = i + 1

    def _state_at(self, position: int) -> CaseState | None:
        """The stored state after the first `position` events."""
        if not hasattr(self, "_at"):  # one pass over the history, for every row
            wanted, state, self._at = {*self._ends.values(), *self._starts.values()}, None, {}
            for i, event in enumerate(self.history, 1):
                state = replay_on(state, [event])
                if i in wanted:
                    self._at[i] = state
        return self._at.get(position)

    def state_after(self, key: str) -> CaseState:
        """The stored state just after the row's last event: the row's stored outcome."""
        return self._state_at(self._ends[key])

    def state_before(self, key: str) -> CaseState | None:
        """The stored state the row was planned on (None: the row's events open the stream)."""
        return self._state_at(self._starts[key])


Lookup = Callable[[str], StoredCase | None]


def command_prefix(source: str, case: str) -> str:
    """Command ids of an imported trace: derived from the log, so a re-import is the same commands."""
    prefix = f"import:{source}:{case}"
    return prefix if len(prefix) <= 150 else "import:" + hashlib.sha256(prefix.encode()).hexdigest()[:40]


def row_of(command_id: str) -> str | None:
    """The row key of an imported row's command id (`<prefix>:<row key>:<n>`, or the follow-up case
    such a command opened, `follow-up:<that id>`); None for anything else (the opening, the engine's)."""
    command_id = command_id.removeprefix("follow-up:")
    if not command_id.startswith("import:"):
        return None
    parts = command_id.rsplit(":", 2)
    return parts[1] if len(parts) == 3 and parts[2].isdigit() and parts[1] != "open" else None


class Planner:
    def __init__(self, mapping: Mapping, policy: SlaPolicy | None) -> None:
        self.mapping = mapping
        self.policy = policy

    def identity(self, trace: Trace) -> tuple[str, str]:
        """The case id a trace imports as, and its opening's command id (what marks it imported)."""
        if self.mapping.plan.command_attribute:
            opening = self._native(trace.rows[0])
            return opening.get("case_id") or "", opening.get("command_id") or ""
        source = SourceRef(system=self.mapping.source, external_id=trace.case)
        return case_id_for(source), f"{command_prefix(self.mapping.source, trace.case)}:open"

    def plan(self, trace: Trace, stored: Lookup | None = None) -> TracePlan:
        """The trace's commands. `stored`: the cases the store holds already (a re-import): rows
        stored already add nothing, later rows continue the stored case from its stored state."""
        if self.mapping.plan.command_attribute:
            return self._plan_native(trace)
        out = TracePlan(trace.case)
        self.out, self.prefix = out, command_prefix(self.mapping.source, trace.case)
        self.lookup: Lookup = stored or (lambda _: None)
        self.state: CaseState | None = None
        self.trying = False  # planning a row only to see what it plans (_tentative)
        first = trace.rows[0]
        unmapped = [r for r in trace.rows if r.activity not in self.mapping.activities]
        if unmapped and self.mapping.plan.unmapped == "error":  # the mapping is fixed, then the trace imported
            out.where, out.problem = unmapped[0].where, f"activity '{unmapped[0].activity}' is not in the mapping"
            return out
        try:
            opening = self._opening(first)
        except (ValidationError, ValueError) as err:
            out.where, out.problem = first.where, f"the case's opening does not validate: {in_words(err)}"
            return out
        out.case_id = opening.case_id or ""
        self._enter(out.case_id)
        self.row, self.n = first, 0
        try:
            if self.known is None:
                self._decide(opening, first, self._terms(opening))
            else:  # opened by an earlier import: the store's opening stands
                history = self.known.history
                self.state = replay_on(None, [e for e in history if e.command_id == history[0].command_id])
                if history[0].command_id == opening.command_id and history[0].command_digest != opening.digest():
                    out.changed.append(Changed(first.case, first.where, first.activity))
                self.stored_until = self._stored_until(trace)
        except CommandRefused as err:
            out.where, out.problem = first.where, f"opening refused ({err.code}): {err.message}"
            return out
        rows = trace.rows
        if self.known is not None:
            try:
                rows = self._keep_stored_keys(rows)
            except _Invalid as err:
                self.trying = False
                out.where, out.problem = err.row.where, err.message
                return out
            # Within one instant, the stored rows first: a row of the last stored instant that is not
            # stored continues the case after them (a trial export cut inside that instant).
            rows = sorted(rows, key=lambda r: (r.at, not self._is_stored(r)))
        try:
            for row in rows:
                if self.known is None:
                    self._row(row)  # a case new to the store, or continued from its stored state
                else:
                    self._replay(row)
        except _Invalid as err:
            self.trying = False
            out.where, out.problem = err.row.where, err.message
        return out

    # -- a case the store holds already (a re-import)

    def _enter(self, case_id: str) -> None:
        """Plan on this case from now on: a new one, or one the store holds (then replayed first)."""
        self.known = self.lookup(case_id)
        self.case = self.out.cases.setdefault(case_id, CasePlan(case_id))
        if self.known is not None:
            self.case.after, self.case.state = self.known.state.version, self.known.state

    def _replay(self, row: Row) -> None:
        """A row of a case an earlier import stored. Stored already: nothing to add (said when the
        mapping now plans it otherwise). Not stored and at or after the case's last stored instant:
        the case continues from its stored state. Not stored and before it: history is not
        rewritten; the row is refused and said (`before_stored`, or the domain's own refusal of it
        on the stored state); only a row that plans nothing at all adds and loses nothing."""
        known = self.known
        assert known is not None
        if row.key in known.commands:
            # Compared on the state the row was stored on, not the previous row's in this file:
            # rows of one instant listed in another order are the same rows.
            self.state = known.state_before(row.key) or self.state
            self._compare(row, known)
            self.state = known.state_after(row.key)
            return
        follow_up = self._stored_follow_up(row)
        if follow_up is not None:
            self._compare(row, follow_up[1])
            self._enter(follow_up[0])
            self.state = follow_up[1].state_after(row.key)
            return
        # At the last stored instant, of the case that holds it: the row continues the case after
        # the instant's stored rows (as imported at once); before it, history would be rewritten.
        if row.at < self.stored_until or (row.at == self.stored_until and known.last_at < row.at):
            planned, refused = self._tentative(row)
            if (planned or refused) and known.live:
                self._live(row)
            elif planned or row.at < known.history[0].at:
                # Before the stored opening: no import that stored this case read the row (its rows
                # start there), so whatever it plans on the stored state, it is lost unless said.
                self.out.refused.append(Refused(
                    row.case, row.where, row.activity, planned[0].kind if planned else "-", "before_stored", (
                        f"case {self.case.case_id} is stored up to {self.stored_until.isoformat()} (opened "
                        f"{known.history[0].at.isoformat()}): a row at {row.at.isoformat()} that is not in it "
                        "would rewrite its history, which is kept as it is")))
            else:  # the domain refuses it on the stored state: said again, as the first import said it
                self.out.refused += refused
            return
        if known.live:
            self._live(row)
            return
        self.known, self.state = None, known.state  # the store's state stands: continue from it
        self._row(row)

    def _keep_stored_keys(self, rows: list[Row]) -> list[Row]:
        """Rows alike in case, activity and instant are told apart by their occurrence (logs.py numbers
        them by content). Against a stored case that numbering would shift when a re-export adds a row
        that sorts before a stored one, or renames one: the added row would take a stored row's key.
        So, within each such group: a row that plans exactly what a stored row of the group stored
        keeps that row's key (whatever its place in the file); the others take the group's unused
        stored keys in the order of the file (a corrected row: reported changed); the rest are new."""
        groups: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(row_key(row), []).append(i)
        out = list(rows)
        for identity, places in groups.items():
            keys = [k for _, _, k in sorted((n, case._starts[k], k) for n, case in enumerate(self._stored_cases)
                                            for k in case.commands if k == identity or k.startswith(identity + "~"))]
            if not keys or (len(places) == 1 and keys == [rows[places[0]].key]):
                continue
            free, left = list(keys), []
            for i in sorted(places, key=lambda i: json.dumps([rows[i].resource, sorted(rows[i].attributes.items())])):
                match = next((k for k in free if self._plans_as_stored(rows[i], k)), None)
                if match is None:
                    left.append(i)
                else:
                    free.remove(match)
                    out[i] = replace(rows[i], key=match)
            n = max(int(k.rsplit("~", 1)[1]) if "~" in k else 1 for k in keys)
            for i in sorted(left):  # the file's order: a renamed row keeps the place of the row it was
                if free:
                    out[i] = replace(rows[i], key=free.pop(0))
                else:
                    n += 1
                    out[i] = replace(rows[i], key=f"{identity}~{n}")
        return out

    def _plans_as_stored(self, row: Row, key: str) -> bool:
        """Whether the row, under a stored row's key and on the state that row was stored on, plans
        exactly the commands stored for it."""
        holder = next(c for c in self._stored_cases if key in c.commands)
        saved = self.state
        self.state = holder.state_before(key) or self.state
        try:
            planned = [(c.command_id, c.digest()) for c in self._tentative(replace(row, key=key))[0]]
        finally:
            self.state = saved
        return planned == holder.commands[key]

    def _live(self, row: Row) -> None:
        # A case handed over to the engine is the engine's: the old system's later rows are refused,
        # not written under its workflow (docs/import.md, "Importing again").
        self.out.refused.append(Refused(row.case, row.where, row.activity, "-", "case_live", (
            f"case {self.case.case_id} continues live in casework since its import: rows the old "
            "system records after the handover are not applied (send them to the case if they still matter)")))

    def _is_stored(self, row: Row) -> bool:
        return any(row.key in c.commands for c in self._stored_cases)

    def _stored_until(self, trace: Trace) -> datetime:
        """The last instant the store holds of the trace: of its case, or of the last follow-up case
        an earlier import opened from it (found by the rows that opened them)."""
        case_id, case = self.case.case_id, self.known
        until, self._stored_cases = case.last_at, [case]
        for row in trace.rows:
            if case.state.is_closed and row.at >= case.last_at:
                follow_up = follow_up_case_id(case_id, self._command_id(row, 0))
                found = self.lookup(follow_up)
                if found is not None:
                    case_id, case, until = follow_up, found, max(until, found.last_at)
                    self._stored_cases.append(found)
        return until

    def _stored_follow_up(self, row: Row) -> tuple[str, StoredCase] | None:
        """The follow-up case an earlier import opened with this row, if the store holds it: the row's
        rejection (always its first command) opened it (domain/reopen.py names it)."""
        if not self.known.state.is_closed:
            return None
        case_id = follow_up_case_id(self.case.case_id, self._command_id(row, 0))
        found = self.lookup(case_id)
        return (case_id, found) if found is not None and row.key in found.commands else None

    def _tentative(self, row: Row) -> tuple[list[Command], list[Refused]]:
        """The commands the row plans now, on the state before it, and what the domain refuses of it,
        leaving the plan as it was."""
        saved = (self.state, self.case, self.known, dict(self.out.cases), self.out.commands, len(self.out.sent),
                 len(self.out.refused), self.out.follow_ups,
                 {k: (len(c.events), c.state) for k, c in self.out.cases.items()})
        self.known, self.trying = None, True
        try:
            self._row(row)
        finally:
            self.trying = False
        planned, refused = self.out.sent[saved[5]:], self.out.refused[saved[6]:]
        self.state, self.case, self.known, self.out.cases, self.out.commands = saved[:5]
        del self.out.sent[saved[5]:], self.out.refused[saved[6]:]
        self.out.follow_ups = saved[7]
        for k, (n, state) in saved[8].items():
            del self.out.cases[k].events[n:]
            self.out.cases[k].state = state
        return planned, refused

    def _compare(self, row: Row, holder: StoredCase) -> None:
        planned = [(c.command_id, c.digest()) for c in self._tentative(row)[0]]
        if planned != holder.commands[row.key]:
            self.out.changed.append(Changed(row.case, row.where, row.activity))

    # -- a row

    def _row(self, row: Row) -> None:
        entry = self.mapping.activities.get(row.activity)
        if entry is None:
            entry = Entry(action="add_note", fields={"text": "{activity}"})
        self.row, self.n = row, 0
        before = self.out.commands
        try:
            # Work after a close: the closure did not hold and the customer rejects it, which the
            # domain takes as a reopen within the reopen window, or refuses after it; the work then
            # goes to a follow-up case (domain/reopen.py), as live. "reject_solution": any row that is
            # not itself a closure is such work; "reopen": a row that takes the case to a stage (a
            # note or a reassignment alone is staff's, and refused `case_closed`, as live).
            how = self.mapping.plan.reopen_after_close
            if self.state.is_closed and entry.stage is not S.closed and (
                    how == "reject_solution" or (how == "reopen" and entry.stage is not None)):
                self._reject_closed(row)
            if entry.stage is not None:
                self._reach(entry.stage, entry.reason, row)
            if entry.action is not None:
                self._action(entry, row)
            if self.out.commands == before and self.mapping.plan.unchanged == "note":
                self._send("add_note", row)
        except CommandRefused:
            return  # recorded by _refuse; the trace goes on with its next row

    def _reject_closed(self, row: Row) -> None:
        """The customer rejects the closed case's solution: reopened within the window; after it (or
        on a closure that never reopens, with "reject_solution": the log says work went on), the row
        opens a follow-up case linked to the closed one and goes on there."""
        assert self.n == 0  # the rejection is the row's first command: a re-import finds its follow-up by it
        try:
            cmd = self._command("reject_solution", row)
            events = decide(self.state, cmd, cmd.occurred_at)
        except CommandRefused as err:
            late = err.code == "reopen_window_passed" or (
                err.code == "case_closed" and self.mapping.plan.reopen_after_close == "reject_solution")
            if not late:
                self._refuse(row, "reject_solution", err.code, err.message)
            self._follow_up(follow_up_opening(self.state, cmd), row)
            return
        self._record(cmd, events)

    def _follow_up(self, opening: OpenCase, row: Row) -> None:
        if not self.trying and self.lookup(opening.case_id or "") is not None:  # opened by an earlier import
            self._refuse(row, "open", "follow_up_exists", f"follow-up case {opening.case_id} exists already")
        self._enter(opening.case_id or "")
        self.known, self.state = None, None
        self._decide(opening, row, self._terms(opening))
        self.out.follow_ups += 1

    # -- a log exported by casework: its commands, as they were

    def _native(self, row: Row) -> dict:
        try:
            value = json.loads(row.attributes.get(self.mapping.plan.command_attribute) or "{}")
        except json.JSONDecodeError as err:
            raise ValueError(f"the command column is not JSON ({err})") from None
        return value if isinstance(value, dict) else {}

    def _plan_native(self, trace: Trace) -> TracePlan:
        out = self.out = TracePlan(trace.case)
        self.state = None
        self.row, self.n = trace.rows[0], 0
        for row in trace.rows:
            try:
                cmd = COMMAND_ADAPTER.validate_python({**self._native(row), "occurred_at": row.at})
            except (ValidationError, ValueError) as err:
                if self.state is None:
                    out.where, out.problem = row.where, f"the case's opening does not validate: {in_words(err)}"
                    return out
                out.refused.append(Refused(row.case, row.where, row.activity, row.activity, "invalid", in_words(err)))
                continue
            if self.state is None and not isinstance(cmd, OpenCase):
                out.where, out.problem = row.where, f"a trace starts with its opening ('open'), not '{row.activity}'"
                return out
            terms = self._terms(cmd) if isinstance(cmd, OpenCase) else self._terms_for(cmd)
            try:
                self._decide(cmd, row, terms)
            except CommandRefused as err:
                if self.state is None:
                    out.where, out.problem = row.where, f"opening refused ({err.code}): {err.message}"
                    return out
        out.case_id = self.state.case_id
        self.case.state = self.state
        return out

    # -- the opening

    def _values(self, row: Row) -> dict[str, str]:
        values = {"case": row.case, "activity": row.activity, "timestamp": row.timestamp,
                  "resource": row.resource or self.mapping.plan.unknown_resource, **row.attributes}
        for name, table in self.mapping.translate.items():
            if name in values:
                values[name] = table.get(values[name], table.get("*", values[name]))
        return values

    def _render(self, text: str, row: Row) -> str:
        return text.format_map(self._values(row)).strip()

    def _opening(self, row: Row) -> OpenCase:
        o = self.mapping.open
        source = SourceRef(system=self.mapping.source, external_id=row.case)
        customer = self._render(o.customer, row) or row.case
        return OpenCase(
            command_id=f"{self.prefix}:open", actor=self._actor(row, Role.agent), occurred_at=row.at,
            case_id=case_id_for(source), source=source,
            customer={"id": customer, "name": self._render(o.customer_name, row) or customer,
                      "tier": self._render(o.tier, row)},
            channel=self._render(o.channel, row), category=self._render(o.category, row),
            priority=self._render(o.priority, row), subject=self._render(o.subject, row),
            description=self._render(o.description, row), team=self._render(o.team, row) or None,
            assignee=self._render(o.assignee, row) or None)

    def _terms(self, opening: OpenCase):
        if self.policy is None:
            return None
        return self.policy.terms_for(opening.priority, opening.customer.tier, opening.category, opening.channel)

    # -- stages and actions

    def _reach(self, target: Stage, reason: ClosureReason, row: Row) -> None:
        for _ in range(MAX_STEPS):
            stage = self.state.stage
            if stage is target:
                return
            if target is S.closed and reason is not ClosureReason.resolved:
                self._send("close", row, reason=reason.value)
                continue
            kind = _FROM_CLOSED[target] if stage is S.closed else _NEXT[target].get(stage)
            if kind is None:
                self._refuse(row, "-", "no_path", f"no way from stage '{stage.value}' to '{target.value}'")
            self._send(kind, row)
        self._refuse(row, "-", "no_path", f"stage '{target.value}' not reached in {MAX_STEPS} commands")

    def _action(self, entry: Entry, row: Row) -> None:
        fields = {k: self._render(v, row) if isinstance(v, str) else v for k, v in entry.fields.items()}
        fields = {k: v for k, v in fields.items() if v != ""}  # an empty column leaves the field out
        if entry.action == "reassign" and fields.get("assignee", self.state.assignee) == self.state.assignee \
                and fields.get("team", self.state.team) == self.state.team:
            return  # the row's handler has the case already: nothing to record
        self._send(entry.action, row, role=Role(entry.sender_role), **fields)

    def _send(self, kind: str, row: Row, role: Role = Role.agent, **fields: object) -> None:
        cmd = self._command(kind, row, role, **fields)
        self._decide(cmd, row, self._terms_for(cmd))

    def _command(self, kind: str, row: Row, role: Role = Role.agent, **fields: object) -> Command:
        if kind in _TEXT and _TEXT[kind] not in fields:
            fields[_TEXT[kind]] = self._text(kind, row)
        command_id = self._command_id(row, self.n)
        self.n += 1
        try:
            # Validated with the command (not on its own), so an error names where: `actor.id`.
            actor = ({"id": self.state.customer.id, "role": Role.customer} if kind in _CUSTOMERS
                     else ENGINE if role is Role.system
                     else {"id": row.resource or self.mapping.plan.unknown_resource, "role": role})
            return COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": command_id, "actor": actor,
                                                    "occurred_at": row.at, **fields})
        except ValidationError as err:
            # A value the row holds that no command can carry (a 5,000-character resource, say): the
            # log is wrong there, as with an unreadable timestamp; the trace is left out whole and said
            # (docs/import.md, "Bad input loses nothing"), not refused as if the domain had ruled.
            raise _Invalid(row, f"the row's '{kind}' command does not validate: {in_words(err)}") from None

    def _command_id(self, row: Row, n: int) -> str:
        """The row's n-th command: from the row's content (its key), never its place in the file."""
        return f"{self.prefix}:{row.key or row_key(row)}:{n}"

    def _terms_for(self, cmd: Command):
        """The terms a re-triage or a re-applied policy pins: the rule for the case's new shape."""
        if cmd.kind not in ("retriage", "reapply_policy") or self.policy is None:  # type: ignore[attr-defined]
            return None
        s = self.state
        return self.policy.terms_for(getattr(cmd, "priority", None) or s.priority, s.customer.tier,
                                     getattr(cmd, "category", None) or s.category, s.channel)

    def _decide(self, cmd: Command, row: Row, terms=None) -> None:
        try:
            events = decide(self.state, cmd, cmd.occurred_at, terms)
        except CommandRefused as err:
            self._refuse(row, cmd.kind, err.code, err.message)  # type: ignore[attr-defined]
        self._record(cmd, events)

    def _record(self, cmd: Command, events: list[Event]) -> None:
        if isinstance(cmd, OpenCase) and (self.state is None) and cmd.case_id not in self.out.cases:
            self.case = self.out.cases.setdefault(cmd.case_id or "", CasePlan(cmd.case_id or ""))  # native logs
        self.state = replay_on(self.state, events)
        self.case.events += events
        self.case.state = self.state
        self.out.sent.append(cmd)
        self.out.commands += 1

    def _refuse(self, row: Row, kind: str, code: str, message: str) -> None:
        if self.state is not None:  # an opening refused is the trace's problem, not a row's
            self.out.refused.append(Refused(row.case, row.where, row.activity, kind, code, message))
        raise CommandRefused(code, message)

    def _text(self, kind: str, row: Row) -> str:
        who = f" ({row.resource})" if row.resource else ""
        return {"reject_solution": f"reopened: {row.activity}",
                "record_customer_reply": f"the wait ended: {row.activity}",
                "propose_solution": f"{row.activity}{who}"}.get(kind, row.activity)

    def _actor(self, row: Row, role: Role) -> Actor:
        return Actor(id=row.resource or self.mapping.plan.unknown_resource, role=role)



