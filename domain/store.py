"""The event store: one eventsourcing stream per case, holding the domain events as facts.

The aggregate rebuilds its state with the same `evolve` the workflow uses, and remembers every
command id it has stored, so that a retried append stores nothing twice.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate

from domain.events import EVENT_ADAPTER, EVENT_TYPES, CaseOpened, Event
from domain.lifecycle import evolve
from domain.model import CaseState

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
        self.command_ids: set[str] = set()
        self.take(fact)

    @staticmethod
    def create_id(fact: dict[str, Any]) -> uuid.UUID:
        return stream_id(fact["case_id"])

    def take(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, EVENT_ADAPTER.validate_python(fact))
        self.command_ids.add(fact["command_id"])

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


class CaseStore(Application[uuid.UUID]):
    """Appends a command's events once, and reads a case's history back."""

    env = {"AGGREGATE_CACHE_MAXSIZE": "2000", "AGGREGATE_CACHE_FASTFORWARD": "y"}

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
