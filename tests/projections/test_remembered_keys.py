"""The projection's remembered formatting: an instant's text (handlers.iso) and a calendar's key
(memory.calendar_key) are what the plain computation gives, whatever was remembered before."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from projections import rows
from projections.handlers import iso
from projections.memory import calendar_key

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES))
def test_an_instants_text_is_its_utc_time_to_the_microsecond(t):
    u = t.astimezone(UTC)
    # The oracle: the fields written out by hand, fixed width, as the reporting tables hold them.
    expected = (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}."
                f"{u.microsecond:06d}Z")
    assert rows.iso(t) == expected  # the reports' bounds and the console's
    assert iso(t) == expected  # the rows the projection writes
    assert iso(t) == expected  # remembered: the same text the second time


def test_a_calendars_key_is_its_blake2b_however_many_calendars_came_before():
    rng = random.Random(7)
    calendars = [rng.randbytes(rng.choice([10, 9726])) for _ in range(20)]
    calendars.append(calendars[3][:-1] + bytes([calendars[3][-1] ^ 1]))  # one bit from a remembered one
    for raw in [rng.choice(calendars) for _ in range(400)]:
        assert calendar_key(bytes(bytearray(raw))) == hashlib.blake2b(raw, digest_size=16).hexdigest()
