"""The projection's memory of a case (`case_state`): what it needs to apply the case's next event
and write its rows, and nothing else (no personal field, no policy, no history).

It is the `cases` row's fields, each SLA clock as the domain keeps it (with what a reporting row
does not show: since when it runs, the business time counted before, its waits), the calendar of
the case's pinned terms (the business time of its clocks is counted on it: by its key in
`sla_calendars`, where each distinct calendar is kept once), and the staff who acted on the case
(agent_totals counts the cases each touched). Written once per case and batch, as JSON.

Rows written by earlier versions held the whole domain state (scrubbed): `from_state` reads them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Union

import msgspec
from msgspec import Struct

from domain.calendar import BusinessCalendar
from domain.model import CaseState

FORMAT = 1  # what `memory` says in a row of this layout (rows of the old one have no such field)


class ClockMemory(Struct, gc=False):
    """The domain's Clock (domain/model.py), field for field: domain.clocks applies to either."""

    name: str
    cycle: int
    target: timedelta
    state: str
    started_at: datetime
    running_since: Union[datetime, None]
    elapsed_before: timedelta
    paused_since: Union[datetime, None]
    paused_total: timedelta
    due: Union[datetime, None]
    warned: list[float]
    breached_at: Union[datetime, None]
    met_at: Union[datetime, None]


class CaseMemory(Struct, gc=False):
    memory: int  # FORMAT
    case_id: str
    source_system: Union[str, None]
    external_id: Union[str, None]
    stage: str
    priority: str
    tier: str
    category: str
    channel: str
    customer_id: str
    team: Union[str, None]
    assignee: Union[str, None]
    opened_at: datetime
    first_response_at: Union[datetime, None] = None
    solved_at: Union[datetime, None] = None
    closed_at: Union[datetime, None] = None
    closure_reason: Union[str, None] = None
    escalation_level: int = 0
    reopen_count: int = 0
    clarification_rounds: int = 0
    notes_count: int = 0
    version: int = 0  # events applied
    policy_version: Union[str, None] = None  # of the pinned SLA terms; None: no terms pinned
    calendar: Union[str, None] = None  # the pinned terms' calendar: its key in sla_calendars
    clocks: dict[str, ClockMemory] = {}
    breached: list[str] = []  # every clock that ever breached (a later cycle does not wipe it)
    satisfaction: Union[float, None] = None  # the latest survey's overall score
    staff: list[tuple[str, str]] = []  # (actor id, role) of every staff member who acted on the case


_DECODER = msgspec.json.Decoder(CaseMemory)
_ENCODER = msgspec.json.Encoder()


def dumps(memory: CaseMemory) -> str:
    return _ENCODER.encode(memory).decode()


def loads(text: str | bytes) -> CaseMemory | None:
    """A row's memory, or None if the row is of the old layout (the whole domain state)."""
    try:
        return _DECODER.decode(text)
    except msgspec.ValidationError:
        return None


# key -> the calendar, decoded and compiled once. Never emptied: it holds one entry per distinct
# calendar ever pinned (a few per policy version), and projections in several threads (the live
# runner, a report as of an instant) may be reading it at once.
_CALENDARS: dict[str, BusinessCalendar] = {}


_RECENT: list[tuple[bytes, str]] = []  # the last calendars keyed: most cases pin one of a few


def calendar_key(calendar_json: bytes) -> str:
    """The key of a calendar (its JSON as pinned) in sla_calendars. Remembered for the last few
    calendars: each pin of the same terms carries the same calendar (kilobytes of holidays), and
    comparing bytes is cheaper than hashing them."""
    for raw, key in _RECENT:
        if raw == calendar_json:
            return key
    key = hashlib.blake2b(calendar_json, digest_size=16).hexdigest()
    _RECENT.insert(0, (calendar_json, key))
    del _RECENT[8:]
    return key


def known(key: str) -> bool:
    return key in _CALENDARS


def remember(key: str, calendar_json: bytes | str) -> None:
    if key not in _CALENDARS:
        _CALENDARS[key] = BusinessCalendar.model_validate_json(calendar_json)


def calendar(memory: CaseMemory) -> BusinessCalendar | None:
    """The case's calendar (the batch remembered it: pinned in it, or read from sla_calendars)."""
    return None if memory.calendar is None else _CALENDARS[memory.calendar]


def from_state(state: CaseState, staff: list[tuple[str, str]], calendars: dict[str, bytes] | None = None) -> CaseMemory:
    """The memory of a case whose domain state is `state` (a row of the old layout, or a test's
    oracle), with the staff who acted on it (not part of the domain state). Its calendar is
    remembered, and added to `calendars` (key -> JSON: the rows sla_calendars is to hold)."""
    sla = state.sla
    calendars = {} if calendars is None else calendars
    if sla is not None:
        raw = sla.calendar.model_dump_json().encode()
        calendars[calendar_key(raw)] = raw
        remember(calendar_key(raw), raw)
    return CaseMemory(
        memory=FORMAT, case_id=state.case_id,
        source_system=state.source.system if state.source else None,
        external_id=state.source.external_id if state.source else None,
        stage=state.stage.value, priority=state.priority.value, tier=state.customer.tier.value,
        category=state.category.value, channel=state.channel.value, customer_id=state.customer.id,
        team=state.team, assignee=state.assignee, opened_at=state.opened_at,
        first_response_at=state.first_response_at, solved_at=state.solved_at, closed_at=state.closed_at,
        closure_reason=state.closure_reason.value if state.closure_reason else None,
        escalation_level=state.escalation_level, reopen_count=state.reopen_count,
        clarification_rounds=state.clarification_rounds, notes_count=state.notes_count, version=state.version,
        policy_version=sla.policy_version if sla else None,
        calendar=calendar_key(raw) if sla else None,
        clocks={name: ClockMemory(**c.model_dump()) for name, c in state.clocks.items()},
        breached=state.sla_breached,
        satisfaction=state.surveys[-1].overall if state.surveys else None,
        staff=sorted(set(staff)))


def as_plain(memory: CaseMemory) -> dict[str, Any]:
    """The memory as plain values (the calendar itself for its key), for comparing two memories."""
    out = msgspec.to_builtins(memory)
    found = calendar(memory)
    out["calendar"] = None if found is None else found.model_dump(mode="json")
    out["staff"] = sorted(map(tuple, memory.staff))
    return out
