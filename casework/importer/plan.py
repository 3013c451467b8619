"""Planning a trace: the legal commands that take its case through the stages its rows name, each
decided by the domain's rules at the row's recorded instant (domain/decide.py evaluates the SLA
clocks as of that instant first, so a warning or breach lands when it really fell due).

The planner knows the stage graph the domain allows (docs/import.md, "How a stage is reached"): a
first response ends intake, a customer reply ends a wait, a solution is proposed before it is
confirmed, a rejected solution precedes more work after a proposed one. Whatever the domain still
refuses is reported with its code and the trace goes on with its next row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from casework.importer.logs import Row, Trace
from casework.importer.mapping import Entry, Mapping
from domain.commands import COMMAND_ADAPTER, Command, OpenCase
from domain.events import Event
from domain.ids import case_id_for
from domain.lifecycle import CommandRefused, decide, replay_on
from domain.model import ENGINE, Actor, CaseState, ClosureReason, Role, SourceRef, Stage
from domain.refusal import in_words
from domain.reopen import REOPENABLE
from domain.sla import SlaPolicy

S = Stage
# The next command on the way from a stage to a target stage (closed: a resolved closure; other
# closures are one `close`). A closed case goes back to work only by a rejection within the reopen
# window (reopen_after_close = "reopen"); otherwise the stage's own command is sent and the domain
# refuses it with its own code (`case_closed`).
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


@dataclass(frozen=True)
class Refused:
    case: str
    where: str
    activity: str
    command: str
    code: str
    message: str


@dataclass
class TracePlan:
    case: str
    case_id: str = ""
    events: list[Event] = field(default_factory=list)
    commands: int = 0
    sent: list[Command] = field(default_factory=list)  # the commands decided, in order (the opening first)
    refused: list[Refused] = field(default_factory=list)
    problem: str = ""  # the trace cannot be imported at all (its opening does not validate or is refused)
    where: str = ""  # the row the problem is at (said once, by whoever reports it)
    state: CaseState | None = None


def command_prefix(source: str, case: str) -> str:
    """Command ids of an imported trace: derived from the log, so a re-import is the same commands."""
    prefix = f"import:{source}:{case}"
    return prefix if len(prefix) <= 150 else "import:" + hashlib.sha256(prefix.encode()).hexdigest()[:40]


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

    def plan(self, trace: Trace) -> TracePlan:
        if self.mapping.plan.command_attribute:
            return self._plan_native(trace)
        out = TracePlan(trace.case)
        self.out, self.prefix = out, command_prefix(self.mapping.source, trace.case)
        self.state: CaseState | None = None
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
        try:
            self._decide(opening, first, self._terms(opening))
        except CommandRefused as err:
            out.where, out.problem = first.where, f"opening refused ({err.code}): {err.message}"
            return out
        reopen_next = False  # a closure that did not hold: the next work rejects it first
        for i, row in enumerate(trace.rows):
            entry = self.mapping.activities.get(row.activity)
            if entry is None:
                entry = Entry(action="add_note", fields={"text": "{activity}"})
            target, last = entry.stage, i == len(trace.rows) - 1
            before = out.commands
            try:
                holds = target in (S.closed, S.solution, S.follow_up) and entry.action is None
                if reopen_next and not holds and self.state.stage in (S.solution, S.follow_up):
                    self._send("reject_solution", row)
                reopen_next = reopen_next and holds
                # Work on the case (a stage) after a close: the closure did not hold, and the customer
                # reopens it. A staff-only row (a note, a reassignment: no stage) never reopens a case,
                # as live (domain/reopen.py): its command is refused `case_closed`.
                if (self.state.is_closed and not holds and entry.stage is not None
                        and self.state.closure_reason in REOPENABLE
                        and self.mapping.plan.reopen_after_close == "reopen"):
                    self._send("reject_solution", row)
                if target is S.closed and not last and self.mapping.plan.reopen_after_close == "reject_solution":
                    target, reopen_next = S.solution, True
                if target is not None:
                    self._reach(target, entry.reason, row)
                if entry.action is not None:
                    self._action(entry, row)
                if out.commands == before and self.mapping.plan.unchanged == "note":
                    self._send("add_note", row)
            except CommandRefused:
                continue  # recorded by _refuse; the trace goes on with its next row
        out.state = self.state
        return out

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
        out.case_id, out.state = self.state.case_id, self.state
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
        if kind in _TEXT and _TEXT[kind] not in fields:
            fields[_TEXT[kind]] = self._text(kind, row)
        actor = (Actor(id=self.state.customer.id, role=Role.customer) if kind in _CUSTOMERS
                 else ENGINE if role is Role.system else self._actor(row, role))
        command_id = f"{self.prefix}:{row.where.replace(' ', '')}:{self.out.commands}"
        try:
            cmd = COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": command_id, "actor": actor,
                                                   "occurred_at": row.at, **fields})
        except ValidationError as err:
            self._refuse(row, kind, "invalid", in_words(err))
        self._decide(cmd, row, self._terms_for(cmd))

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
        self.state = replay_on(self.state, events)
        self.out.events += events
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



