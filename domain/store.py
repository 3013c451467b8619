"""The event store: one eventsourcing stream per case, holding the domain events as facts.

The store is the case's source of truth (docs/exactly-once.md): `execute` decides a command on the
stream's own state and appends its events with expected-version concurrency, in one step, and the
workflow adopts whatever the store returns. The aggregate remembers every command id it has stored
with the digest of what that command asked, so a retry stores nothing twice, forever, and a command
id reused for another command is refused.

Personal fields (domain/personal.py) never reach the store in plaintext: the store's mapper seals
them with the customer's key on the way in (a `Sealer`: the keyring, casework/keyring.py) and opens
them on the way out; once the customer is forgotten they read "[forgotten]". The audit of who
forgot whom is a stream of its own in the same store (docs/security-data.md).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from collections.abc import Callable
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError, Application, Cache, LRUCache
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent
from pydantic import BaseModel

from domain.commands import AnyCommand, Command, OpenCase
from domain.events import EVENT_ADAPTER, EVENT_TYPES, PERSONAL_PATHS, AnyEvent, CaseOpened, Event
from domain.lifecycle import CommandRefused, decide, evolve
from domain.model import Actor, CaseState
from domain.personal import FORGOTTEN, map_personal
from domain.sla import SlaTerms

_STREAM_NAMESPACE = uuid.UUID("0c3e9f52-8d1a-4b7e-a2c4-96f1d3e5b708")


def stream_id(case_id: str) -> uuid.UUID:
    return uuid.uuid5(_STREAM_NAMESPACE, case_id)


class CaseStream(Aggregate):
    """A case's history in the store. Each stored event class is named after its domain event."""

    class Fact(Aggregate.Event):
        fact: dict[str, Any]  # the domain event, in its JSON form
        # Whose personal fields it holds (the key the mapper seals them with); "" in events stored
        # before sealing existed.
        customer_id: str = ""

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

    def __deepcopy__(self, memo: dict) -> CaseStream:
        """The aggregate cache hands out deep copies: a copy of the 12 KB state (the pinned policy) per
        command was a third of the worker's CPU (bench/README.md). `evolve` never changes a state in
        place, it returns a new one, so the copy shares it and copies only what this object mutates."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.command_ids = dict(self.command_ids)
        clone._pending_events = list(self._pending_events)  # noqa: SLF001 - the aggregate's own list
        return clone

    def take(self, fact: dict[str, Any]) -> None:
        self.state = evolve(self.state, EVENT_ADAPTER.validate_python(fact))
        self.command_ids.setdefault(fact["command_id"], fact.get("command_digest", ""))

    def record(self, event: Event) -> None:
        self.trigger_event(getattr(CaseStream, event.type), fact=event.model_dump(mode="json"),
                           customer_id=self.state.customer.id if self.state else "")


# One stored event class per domain event (CaseStream.ClarificationRequested, ...), so the store's
# topics read as the domain's past-tense names; generated to keep the list in one place (events.py).
for _t in EVENT_TYPES:
    _name = _t.model_fields["type"].default
    if _name != "CaseOpened":
        _cls = type(_name, (CaseStream.Fact,), {"__qualname__": f"CaseStream.{_name}",
                                                "__module__": __name__})
        setattr(CaseStream, _name, _cls)


class Sealer(Protocol):
    """Field-level encryption with a key per customer (the keyring). `aad` binds a token to its place."""

    def seal(self, customer_id: str, aad: str, text: str) -> str: ...

    def unseal(self, aad: str, token: str) -> str | None:
        """The text, or None when the customer's key is destroyed; raises when the token was altered."""

    def is_sealed(self, value: str) -> bool: ...

    def link_case(self, customer_id: str, case_id: str) -> None:
        """Note that the case holds the customer's personal data (to find it when forgetting them)."""

    def forget_epoch(self) -> int:
        """How many keys were destroyed so far (by any process): a change empties cached cases."""


def owner_of(event: Any) -> str:
    """The customer whose personal fields a stored case event holds."""
    if isinstance(event, CaseStream.CaseOpened):
        return event.fact["customer"]["id"]
    return getattr(event, "customer_id", "")


class SealingMapper(Mapper[uuid.UUID]):
    """eventsourcing's mapper with the case events' personal fields sealed on the way in and opened
    on the way out, so the stored bytes (and whatever the cipher then makes of them) never hold them.

    The seal's associated data names the case, the event type and the field: a token moved to another
    field or case does not open (a clear error, never another field's text)."""

    sealer: Sealer | None = None

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fact = getattr(domain_event, "fact", None)
        if self.sealer is None or not isinstance(fact, dict):
            return super().to_stored_event(domain_event)
        customer_id, sealer = owner_of(domain_event), self.sealer
        if not customer_id:
            raise ValueError(f"case event {fact.get('type')} of case {fact.get('case_id')} names no customer: "
                             "its personal fields cannot be sealed")
        if isinstance(domain_event, CaseStream.CaseOpened):
            sealer.link_case(customer_id, fact["case_id"])
        sealed = map_personal(fact, PERSONAL_PATHS.get(fact.get("type", ""), ()),
                              lambda path, text: sealer.seal(customer_id, _aad(fact, path), text))
        clone = object.__new__(type(domain_event))
        object.__setattr__(clone, "__dict__", {**vars(domain_event), "fact": sealed})
        return super().to_stored_event(clone)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        fact = getattr(event, "fact", None)
        if self.sealer is None or not isinstance(fact, dict):
            return event
        object.__setattr__(event, "fact", self._opened(fact))
        return event

    def fact_of(self, stored_event: StoredEvent) -> dict[str, Any]:
        """A stored case event's fact, personal fields opened: to_domain_event(...).fact, without
        building eventsourcing's event object around it or decoding the rest of its state (the
        projection reads every event of the store this way)."""
        fact = json.loads(self.plain_state(stored_event.state))["fact"]  # the fact holds plain JSON types only
        return fact if self.sealer is None else self._opened(fact)

    def plain_state(self, state: bytes) -> bytes:
        """A stored event's state bytes as the transcoder wrote them (JSON): decrypted and decompressed
        if configured. Its personal fields are still sealed (`open_field`)."""
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return state

    def open_field(self, case_id: str, event_type: str, path: str, value: str) -> str:
        """One personal field of a stored case event, opened as `fact_of` opens each: its text,
        FORGOTTEN once the customer's key is destroyed, or the value itself if it was stored before
        sealing existed (or no sealer is configured)."""
        sealer = self.sealer
        if sealer is None or not sealer.is_sealed(value):
            return value
        text = sealer.unseal(_field_aad(case_id, event_type, path), value)
        return FORGOTTEN if text is None else text

    def _opened(self, fact: dict[str, Any]) -> dict[str, Any]:
        case_id, kind = fact.get("case_id"), fact.get("type", "")
        return map_personal(fact, PERSONAL_PATHS.get(kind, ()),
                            lambda path, value: self.open_field(case_id, kind, path, value))  # type: ignore[arg-type]


def _aad(fact: dict[str, Any], path: str) -> str:
    return _field_aad(fact.get("case_id"), fact.get("type"), path)


def _field_aad(case_id: str | None, event_type: str | None, path: str) -> str:
    return f"case:{case_id}|{event_type}|{path}"


class PrivacyAudit(Aggregate):
    """The append-only audit of forgotten customers: one stream, beside the cases, in the same store."""

    class CustomerForgotten(Aggregate.Event):
        customer_id: str
        actor: dict[str, Any]
        at: str  # ISO 8601 UTC
        key_ids: list[str]  # the customer's data keys destroyed
        case_ids: list[str]  # the cases that held their personal data
        reason: str

        def apply(self, aggregate: PrivacyAudit) -> None:
            aggregate.entries += 1

    class Started(Aggregate.Created):
        pass

    def __init__(self) -> None:
        self.entries = 0

    @staticmethod
    def create_id() -> uuid.UUID:
        return PRIVACY_AUDIT_ID


PRIVACY_AUDIT_ID = uuid.uuid5(_STREAM_NAMESPACE, "privacy-audit")


class Forgotten(BaseModel):
    """One entry of the privacy audit."""

    customer_id: str
    actor: Actor
    at: datetime
    key_ids: list[str]
    case_ids: list[str]
    reason: str = ""


_CASE_TOPIC = f"{__name__}:CaseStream."


def is_case_event(topic: str) -> bool:
    """Whether a stored event's topic is a case's (the store also holds the privacy audit)."""
    return topic.startswith(_CASE_TOPIC)


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

    def __init__(self, env: dict[str, str] | None = None, sealer: Sealer | None = None) -> None:
        """`sealer`: seal personal fields with the customer's key (casework.stores opens the store
        with the keyring); without one they are stored as they are (the store's own tests)."""
        self.sealer = sealer
        super().__init__(env=env)

    def construct_mapper(self) -> Mapper[uuid.UUID]:
        mapper = self.factory.mapper(transcoder=self.construct_transcoder(), mapper_class=SealingMapper)
        mapper.sealer = self.sealer  # type: ignore[attr-defined]
        return mapper

    def _forget_cached_if_someone_was_forgotten(self) -> None:
        # Cached cases were built from opened fields; once a key is destroyed (perhaps by another
        # process) a cached case could still hold that customer's text and hand it to a new event or a
        # notification, sealed under a fresh key. Forgetting is rare: then every cached case is dropped.
        if self.sealer is None or self.repository.cache is None:
            return
        epoch = self.sealer.forget_epoch()
        if epoch != getattr(self, "_epoch", None):
            if getattr(self, "_epoch", None) is not None:
                cache = self.repository.cache
                self.repository.cache = LRUCache(maxsize=cache.maxsize) if isinstance(cache, LRUCache) else Cache()
            self._epoch = epoch

    def record_forgotten(self, entry: Forgotten) -> None:
        """Append a forgetting to the privacy audit stream (append-only: a conflict is retried)."""
        for _ in range(self.CONFLICT_RETRIES):
            try:
                audit = self.repository.get(PRIVACY_AUDIT_ID)
            except AggregateNotFoundError:
                audit = PrivacyAudit._create(PrivacyAudit.Started, id=PRIVACY_AUDIT_ID)
            data = entry.model_dump(mode="json")
            audit.trigger_event(PrivacyAudit.CustomerForgotten, **data)
            try:
                self.save(audit)
                return
            except IntegrityError:
                continue
        raise RuntimeError(f"privacy audit: {self.CONFLICT_RETRIES} concurrent appends in a row won")

    def forgotten(self) -> list[Forgotten]:
        """The privacy audit, oldest first."""
        return [Forgotten.model_validate({k: getattr(e, k) for k in Forgotten.model_fields})
                for e in self.repository.event_store.get(PRIVACY_AUDIT_ID)
                if isinstance(e, PrivacyAudit.CustomerForgotten)]

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
        self._forget_cached_if_someone_was_forgotten()
        try:
            return self.repository.get(stream_id(case_id))
        except AggregateNotFoundError:
            return None

    # -- imported history (casework/importer): a case written whole, in one transaction

    def command_ids(self, case_id: str) -> dict[str, str] | None:
        """The command ids (with digests) the case's stream holds; None when there is no stream."""
        stream = self._get(case_id)
        return dict(stream.command_ids) if stream else None

    def import_cases(self, histories: list[list[Event]],
                     continued: list[tuple[str, int, list[Event]]] | None = None, *,
                     stored_at: datetime) -> None:
        """Store whole imported case histories, and the events that continue cases imported before
        (`continued`: case id, the version they follow, the events), in one transaction, or nothing:
        an import killed half-way leaves each case as it was or complete. Refused (IntegrityError,
        nothing stored) when a new case's stream exists, or a continued one moved past its version:
        imported history is only written where the importer saw the case as it is.

        Each event is stamped `imported_at` = `stored_at` (the importer's now: the domain reads no
        clock): its recorded_at is the log's instant, long before
        the store held it, and "what did the store know at T" must not count it before now (the one
        place the stamp is made; projections/asof.py reads it)."""
        streams = []
        for events in histories:
            if not events or not isinstance(events[0], CaseOpened):
                raise ValueError("an imported case history starts with its CaseOpened event")
            events = [event.model_copy(update={"imported_at": stored_at}) for event in events]
            stream = CaseStream(events[0].model_dump(mode="json"))
            for event in events[1:]:
                stream.record(event)
            streams.append(stream)
        for case_id, version, events in continued or []:
            stream = self._get(case_id)
            if stream is None or stream.version != version:
                raise IntegrityError(f"case {case_id} is not at version {version} any more")
            for event in events:
                stream.record(event.model_copy(update={"imported_at": stored_at}))
            streams.append(stream)
        if streams:
            self.save(*streams)
