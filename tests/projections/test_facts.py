"""The projection's reading of the stored events (projections/facts.py) against the domain's events:
a struct per event type, each field one of the domain event's, with the domain's default (an event
stored before a field existed decodes as the domain would read it), and each stored event decoding
to the domain event's values."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum

import msgspec
import pytest
from pydantic_core import PydanticUndefined

from casework.history import write_history
from domain.events import EVENT_TYPES
from projections import facts
from projections.handlers import HANDLERS
from tests.conftest import sqlite_store

DOMAIN = {t.model_fields["type"].default: t for t in EVENT_TYPES}
STRUCTS = {cls.type: cls for cls in facts.FACT_TYPES}


def test_every_domain_event_type_has_a_struct_and_a_handler():
    assert STRUCTS.keys() == DOMAIN.keys() == HANDLERS.keys()


@pytest.mark.parametrize("kind", sorted(DOMAIN))
def test_each_struct_field_is_the_domain_events_with_its_default(kind):
    model, struct = DOMAIN[kind], STRUCTS[kind]
    for field in msgspec.structs.fields(struct):
        assert field.encode_name in model.model_fields, (kind, field.encode_name)
        domain = model.model_fields[field.encode_name]
        if domain.default is PydanticUndefined:
            assert field.required, (kind, field.name)
        else:
            default = domain.default.value if isinstance(domain.default, Enum) else domain.default
            assert not field.required and field.default == default, (kind, field.name)


def agree(got, want, where: str) -> None:
    """The struct's value equals the domain's (on the struct's fields only, for nested structs)."""
    if isinstance(got, msgspec.Struct):
        for field in msgspec.structs.fields(got):
            part = want[field.encode_name] if isinstance(want, dict) else getattr(want, field.encode_name)
            if field.encode_name in ("target", "elapsed"):  # durations, read as they are used
                got_value = getattr(got, field.encode_name)
            else:
                got_value = getattr(got, field.name)
            agree(got_value, part, f"{where}.{field.encode_name}")
    elif isinstance(got, msgspec.Raw):  # the calendar, kept as JSON
        assert msgspec.json.decode(bytes(got)) == want.model_dump(mode="json"), where
    elif isinstance(want, Enum):
        assert got == want.value, where
    elif isinstance(want, dict):
        assert got == want, where
    else:
        assert got == want, (where, got, want)


def test_stored_events_decode_to_the_domain_events_values(tmp_path):
    store = sqlite_store(tmp_path / "events.db")
    write_history(store, cases=30, seed=3)
    read = facts.reader(store.mapper)
    seen = set()
    for n in store.recorder.select_notifications(0, 10_000, inclusive_of_start=False):
        fact = read(n.state)
        domain = DOMAIN[fact.type].model_validate(store.mapper.to_domain_event(n).fact)
        agree(fact, domain, fact.type)
        seen.add(fact.type)
    assert len(seen) > 10
