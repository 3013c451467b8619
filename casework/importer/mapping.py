"""The import mapping (TOML): which columns of an event log mean what, how a trace opens its case, and
what each activity does to it: take it to a stage, or apply an action. docs/import.md describes it."""

from __future__ import annotations

import string
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from domain.commands import COMMAND_TYPES, TIMER_COMMANDS
from domain.model import ClosureReason, Stage
from domain.refusal import in_words

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"
# What every template may name besides the mapped attributes.
ROW_NAMES = frozenset({"case", "activity", "resource", "timestamp"})
# Stages the planner reaches with the domain's own commands (intake is where a case starts).
TARGET_STAGES = frozenset(Stage) - {Stage.intake}
# The planner's own moves between stages; as actions they would bypass its rules.
PLANNED_KINDS = frozenset({"open", "record_customer_reply", "confirm_solution", "reject_solution"})
# What the planner sets on every command itself: never a mapping's `fields`.
ENVELOPE = frozenset({"command_id", "actor", "occurred_at", "principal", "signature", "kind"})


def action_fields(action: str) -> list[str]:
    """The fields an action's `fields` may give: the command's own, without the envelope."""
    return [name for name in COMMAND_TYPES[action].model_fields if name not in ENVELOPE]


class MappingError(Exception):
    """A mapping that cannot be used; the message names the file and the entry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Columns(_Strict):
    case: str = "case:concept:name"
    activity: str = "concept:name"
    timestamp: str = "time:timestamp"
    resource: str = "org:resource"
    # More columns by the name templates use: {group} for attributes.group = "org:group".
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name.isidentifier() or name in ROW_NAMES:
                raise ValueError(f"attribute name '{name}' must be an identifier other than {sorted(ROW_NAMES)}")
        return value


class Timestamps(_Strict):
    format: str = ""  # strptime format; empty: ISO 8601
    # The zone of timestamps written without one. Unset: such a timestamp is an error, never a guess.
    timezone: str = ""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{value}'") from None
        return value


class Opening(_Strict):
    """The case a trace opens, from its first row (templates)."""

    customer: str = "{case}"
    customer_name: str = ""  # default: the customer id
    tier: str = "C"
    channel: str = "other"
    category: str = "other"
    priority: str = "normal"
    subject: str = "Imported case {case}"
    description: str = ""
    team: str = ""
    assignee: str = ""


class Entry(_Strict):
    """What one activity does: take the case to `stage` (a closure with `reason`), then apply `action`."""

    stage: Stage | None = None
    reason: ClosureReason = ClosureReason.resolved  # only with stage = "closed"
    action: str | None = None
    role: Literal["agent", "supervisor", "system"] | None = None  # who sends the action (default by kind)
    fields: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> Entry:
        if self.stage is None and self.action is None:
            raise ValueError("give a stage or an action")
        if self.stage is Stage.intake:
            raise ValueError("a case starts in intake: it is no target")
        if "reason" in self.model_fields_set and self.stage is not Stage.closed:
            raise ValueError("'reason' goes with stage = \"closed\"; an action's reason goes in fields")
        if self.action is not None:
            if self.action not in COMMAND_TYPES:
                raise ValueError(f"unknown action '{self.action}' (actions: "
                                 f"{', '.join(sorted(set(COMMAND_TYPES) - PLANNED_KINDS))})")
            if self.action in PLANNED_KINDS:
                raise ValueError(f"'{self.action}' is planned from the stages (map the activity to a stage)")
            # A misspelt field would be dropped silently by the planner (or refused on every row).
            allowed = action_fields(self.action)
            unknown = sorted(set(self.fields) - set(allowed))
            if unknown:
                raise ValueError(f"action '{self.action}' has no field {', '.join(repr(u) for u in unknown)} "
                                 f"(its fields: {', '.join(allowed) or 'none'})")
        if self.fields and self.action is None:
            raise ValueError("'fields' go with an action")
        return self

    @property
    def sender_role(self) -> str:
        if self.role:
            return self.role
        if self.action in TIMER_COMMANDS:
            return "system"
        if self.action in ("escalate", "acknowledge", "de_escalate", "reapply_policy"):
            return "supervisor"
        return "agent"


class Plan(_Strict):
    # Work after a closure. "reject_solution": any later row that is not a closure is the customer
    # rejecting the closed case's solution, decided by the domain's reopen rule (domain/reopen.py):
    # a reopen within the policy's reopen window, after it a follow-up case linked to the closed one
    # (also after a closure that never reopens: the log says work went on); "reopen": the same for
    # a row that takes the case to a stage (a note alone is refused `case_closed`, as live), and a
    # closure that never reopens stays closed; "refuse": the later rows are refused (`case_closed`).
    reopen_after_close: Literal["reject_solution", "reopen", "refuse"] = "reject_solution"
    # A row that changes nothing (its stage reached already, no action): kept as a note, or skipped.
    unchanged: Literal["note", "skip"] = "note"
    unknown_resource: str = "imported"  # the actor of rows without a resource
    # Activities not in the table: the trace is not imported, with the error (the default; the
    # mapping is then completed and the import run again), or the row is kept as a note.
    unmapped: Literal["error", "note"] = "error"
    # A log exported by casework carries each command as JSON in this attribute (casework:command):
    # the rows are then decided as those commands, and `activities` is not needed.
    command_attribute: str = ""


class Mapping(_Strict):
    source: str = Field(min_length=1, max_length=100)  # the source system: case ids derive from it
    columns: Columns = Field(default_factory=Columns)
    timestamp: Timestamps = Field(default_factory=Timestamps)
    open: Opening = Field(default_factory=Opening)
    # Value translations applied where a template names the attribute: translate.impact.Major = "urgent";
    # "*" is the value for anything not listed.
    translate: dict[str, dict[str, str]] = Field(default_factory=dict)
    plan: Plan = Field(default_factory=Plan)
    activities: dict[str, Entry] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _templates_name_known_columns(self) -> Mapping:
        known = ROW_NAMES | set(self.columns.attributes)
        places = [(f"open.{k}", v) for k, v in self.open.model_dump().items()]
        places += [(f"activities.{a!r}.fields.{k}", v) for a, e in self.activities.items()
                   for k, v in e.fields.items() if isinstance(v, str)]
        for where, text in places:
            for name in template_names(text, where):
                if name not in known:
                    raise ValueError(f"{where}: '{{{name}}}' names no column (known: {', '.join(sorted(known))})")
        for name in self.translate:
            if name not in known:
                raise ValueError(f"translate.{name}: names no column")
        if self.plan.command_attribute and self.plan.command_attribute not in self.columns.attributes:
            raise ValueError(f"plan.command_attribute: '{self.plan.command_attribute}' names no attribute")
        if not self.activities and not self.plan.command_attribute:
            raise ValueError("activities: map at least one activity")
        return self


def template_names(text: str, where: str = "") -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as err:
        raise ValueError(f"{where}: bad template {text!r}: {err}") from None


def load_mapping(path: str | Path) -> Mapping:
    """A mapping file, or a shipped one by name (`bpic2013`, `casework`)."""
    path = Path(path)
    if path.suffix != ".toml" and len(path.parts) == 1 and (MAPPINGS / f"{path}.toml").is_file():
        path = MAPPINGS / f"{path}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise MappingError(f"mapping {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise MappingError(f"mapping {path} does not parse: {err}") from None
    except UnicodeDecodeError:
        raise MappingError(f"mapping {path} is not UTF-8 text") from None
    try:
        return Mapping.model_validate(raw)
    except ValidationError as err:
        raise MappingError(f"mapping {path}: {in_words(err)}") from None
