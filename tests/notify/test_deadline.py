"""Each delivery attempt has one overall deadline (CASEWORK_WEBHOOK_TIMEOUT_SECONDS): a receiver that
trickles its answer a byte at a time, each byte well within any read timeout, is cut off at the
deadline; the attempt counts as failed and the row is retried on its backoff."""

from __future__ import annotations

import time
from collections import defaultdict

import httpx

from activities.delivery import RetrySchedule, running
from tests.notify.receiver import PER_ROUND, Trickler, expected_keys, notified_round, open_a_case, wait_for
from tests.notify.test_outbox import service

DEADLINE = 1.0
BACKOFF = 0.5


def test_the_trickler_holds_a_plain_httpx_request_past_its_timeout():
    """The oracle: with httpx's own timeout of the same length, the trickle goes through, slowly."""
    trickler = Trickler(every=0.1, seconds=3.0)
    try:
        started = time.monotonic()
        answer = httpx.post(trickler.url, content=b"{}", timeout=DEADLINE)
        took = time.monotonic() - started
    finally:
        trickler.close()
    assert answer.status_code == 200 and answer.headers["x-slow"].startswith("aaaaaaaaaa")
    assert took >= 3.0 > 2 * DEADLINE


def test_a_trickling_receiver_is_cut_off_at_the_deadline_and_the_row_retried_on_its_backoff(store, tmp_path):
    trickler = Trickler(every=0.1, seconds=60.0)  # would hold each request for a minute
    svc = service(store, tmp_path, trickler.url, retry=RetrySchedule(BACKOFF, BACKOFF, 3600), timeout=DEADLINE)
    try:
        with running(svc):
            cid = open_a_case(store)
            notified_round(store, cid)
            keys = expected_keys(store, cid)
            wait_for(lambda: [r["attempts"] >= 2 for r in svc.outbox.rows()] == [True] * PER_ROUND,
                     what="two cut-off attempts of every row")
            retrying = svc.outbox.rows()
            trickler.fast = True  # the receiver recovers: the rows go through on their next attempt
            wait_for(lambda: svc.outbox.counts()["delivered"] == PER_ROUND, what="every notification delivered")
    finally:
        trickler.close()

    assert {r["idempotency_key"] for r in retrying} == keys
    assert all(r["delivered_at"] is None and "deadline of 1 s" in r["last_error"] for r in retrying)
    slow = [(key, start, end) for key, start, end, trickled in trickler.held if trickled]
    assert len(slow) >= 2 * PER_ROUND
    held = [end - start for _, start, end in slow]
    # Cut at the deadline: not before it, and far from the minute the trickle would have taken. The
    # receiver's clock starts when its thread takes the connection, after the client's deadline clock
    # started (accept and thread start lag on a loaded machine: 0.09 s seen in CI), so its reading of
    # a cut at 1 s may be a little short; a cut at half the deadline would still fail.
    assert min(held) >= DEADLINE - 0.2 and max(held) < DEADLINE + 1.5, held
    starts = defaultdict(list)
    for key, start, _ in slow:
        starts[key].append(start)
    for key, times in starts.items():
        gaps = [b - a for a, b in zip(sorted(times), sorted(times)[1:])]
        # The next attempt of a row comes after the cut-off attempt and its backoff (with its jitter).
        assert all(gap >= DEADLINE + 0.85 * BACKOFF - 0.05 for gap in gaps), (key, gaps)
