"""The event store: one eventsourcing stream per case, holding the domain events as facts.

The store is the case's source of truth (docs/exactly-once.md): `execute` decides a command on the
stream's own state and appends its events with expected-version concurrency, in one step, and the
workflow adopts whatever the store returns. The aggregate remembers every command id it has stored
with the digest of what that command asked, so a retry stores nothing twice, forever, and a command
id reused for another command is refused.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from collections.abc import Callable
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from pydantic import BaseModel

from domain.commands import AnyCommand, Command, OpenCase
from domain.events import EVENT_ADAPTER, EVENT_TYPES, AnyEvent, CaseOpened, Event
from domain.lifecycle import CommandRefused, decide, evolve
from domain.model import CaseState
from domain.sla import SlaTerms

_STREAM_NAMESPACE = uuid.UUID("0c3e9f52-8d1a-4b7e-a2c4-96f1d3e5b708")


def stream_id(case_id: str) -> uuid.UUID:
    return uuid.uuid5(_STREAM_NAMESPACE, case_id)


class CaseStream(Aggregate):
    """A case's history in the store. Each stored event class is named after its domain event."""

    class Fact(Aggregate.Event):
        fact: dict[str, Any]  # the domain event, in its JSON form

        def apply(self, aggregate: CaseStream) -> None:
            aggregate.take(self.fact)

    class CaseOpened(Aggregate.Created):
        fact: dict[str, Any]

    def __init__(self, fact: dict[str, Any]) -> None:
        self.state: CaseState | None = None
        self.command_ids: dict[str, str] = {}  # command id -> digest of what it asked
        self.take(fact)

    @staticmethod
    def create_id(fact: dict[str, Any]) -> uuid.UUID:
        return stream_id(fact["case_id"])

    def take(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, EVENT_ADAPTER.validate_python(fact))
        self.command_ids.setdefault(fact["command_id"], fact.get("command_digest", ""))

    def record(self, event: Event) -> None:
        self.trigger_event(getattr(CaseStream, event.type), fact=event.model_dump(mode="json"))


# One stored event class per domain event (CaseStream.ClarificationRequested, ...), so the store's
# topics read as the domain's past-tense names; generated to keep the list in one place (events.py).
for _t in EVENT_TYPES:
    _name = _t.model_fields["type"].default
    if _name != "CaseOpened":
        _cls = type(_name, (CaseStream.Fact,), {"__qualname__": f"CaseStream.{_name}",
                                                "__module__": __name__})
        setattr(CaseStream, _name, _cls)


class Refusal(BaseModel):
    code: str
    message: str


class Outcome(BaseModel):
    """What the store holds for a case after the position the caller knew (`after`), in order, and
    whether the command was refused (nothing of it stored)."""

    after: int
    events: list[AnyEvent] = []
    refusal: Refusal | None = None

    @property
    def version(self) -> int:
        return self.after + len(self.events)


class CaseStore(Application[uuid.UUID]):
    """Decides and appends a command's events once, and reads a case's history back."""

    env = {"AGGREGATE_CACHE_MAXSIZE": "2000", "AGGREGATE_CACHE_FASTFORWARD": "y"}
    CONFLICT_RETRIES = 50

    def execute(self, case_id: str, cmd: AnyCommand | Command | None, now: datetime, after: int,
                terms: SlaTerms | None = None,
                authorize: Callable[[CaseState | None, Command], None] | None = None) -> Outcome:
        """Decide `cmd` on the stream's state and append its events if the stream has not moved
        meanwhile (expected version); on a concurrent append, decide again on the newer state.

        Returns every event after position `after` (the caller's version), the command's included, so
        the caller adopts what the store holds. `cmd=None` only reads. A command id already stored
        stores nothing: with the same digest it is a retry, with another it is refused.
        """
        for _ in range(self.CONFLICT_RETRIES):
            stream = self._get(case_id)
            version = stream.version if stream else 0
            refusal = None
            if cmd is not None and authorize is not None:
                try:
                    authorize(stream.state if stream else None, cmd)
                except CommandRefused as err:
                    return Outcome(after=after, events=self._since(case_id, after, version),
                                   refusal=Refusal(code=err.code, message=err.message))
            if cmd is None or (isinstance(cmd, OpenCase) and stream is not None):
                events: list[Event] = []  # a read, or an opening of a case that exists: adopt it
            elif stream is not None and cmd.command_id in stream.command_ids:
                events = []
                if stream.command_ids[cmd.command_id] not in ("", cmd.digest()):
                    refusal = Refusal(code="command_id_reused", message=(
                        f"command id '{cmd.command_id}' was used before for another command on case "
                        f"{case_id}; a retry must repeat the same command, a new command needs a new id"))
            else:
                try:
                    events = decide(stream.state if stream else None, cmd, now, terms)
                except CommandRefused as err:
                    events, refusal = [], Refusal(code=err.code, message=err.message)
            if events:
                try:
                    self._save_new(stream, events)
                except IntegrityError:
                    continue  # another writer appended first: decide again on what it stored
            return Outcome(after=after, events=[*self._since(case_id, after, version), *events],
                           refusal=refusal)
        raise RuntimeError(f"case {case_id}: {self.CONFLICT_RETRIES} concurrent appends in a row won")

    def append(self, command_id: str, events: list[Event]) -> int:
        """Store the events of one command, once; returns how many events the case's stream then holds.

        A command id already in the stream stores nothing, so the caller can tell a retry of its own
        append (the count includes its events) from a stale duplicate (the count does not).
        """
        case_id = events[0].case_id
        stream = self._get(case_id)
        if stream is not None and command_id in stream.command_ids:
            return stream.version
        if stream is None:
            if not isinstance(events[0], CaseOpened):
                raise ValueError(f"case {case_id} has no CaseOpened event to append {events[0].type} to")
            stream = CaseStream(events[0].model_dump(mode="json"))
            rest = events[1:]
        elif isinstance(events[0], CaseOpened):
            return stream.version  # opened already, by another command id: opening is idempotent
        else:
            rest = events
        for event in rest:
            stream.record(event)
        self.save(stream)
        return stream.version

    def _save_new(self, stream: CaseStream | None, events: list[Event]) -> None:
        if stream is None:
            stream = CaseStream(events[0].model_dump(mode="json"))
            events = events[1:]
        for event in events:
            stream.record(event)
        self.save(stream)

    def _since(self, case_id: str, after: int, version: int) -> list[Event]:
        """The stored events at positions after+1 .. version."""
        if version <= after:
            return []
        return [EVENT_ADAPTER.validate_python(stored.fact) for stored in
                self.repository.event_store.get(stream_id(case_id), gt=after, lte=version)]

    def history(self, case_id: str) -> list[Event]:
        return [EVENT_ADAPTER.validate_python(stored.fact)
                for stored in self.repository.event_store.get(stream_id(case_id))]

    def state(self, case_id: str) -> CaseState | None:
        stream = self._get(case_id)
        return stream.state if stream else None

    def _get(self, case_id: str) -> CaseStream | None:
        try:
            return self.repository.get(stream_id(case_id))
        except AggregateNotFoundError:
            return None
