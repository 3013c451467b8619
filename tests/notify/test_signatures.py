"""Signed webhooks, seen from the receiver: a real HTTP receiver (tests/notify/receiver.py) verifies
each request with the standardwebhooks library, as a receiver in the field would. A genuine delivery
verifies; a replay is refused once it is older than the tolerance (and dropped by its id before);
a forgery (another secret, a tampered body, no signature, a refreshed timestamp) is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time

import httpx
import pytest

from activities.delivery import RetrySchedule, running
from activities.outbox import OutboxFollower, open_outbox
from activities.webhook import DeliveryFailed, WebhookSender, payload
from tests.notify.receiver import (
    PER_ROUND, SECRET, Receiver, expected_keys, notified_round, open_a_case, wait_for,
)
from tests.notify.test_outbox import outbox_env, service

OTHER_SECRET = "whsec_" + base64.b64encode(b"an-attacker-guessing-the-key-32b").decode()
TOLERANCE = 5 * 60  # the library's window either side of the receiver's clock


def by_hand(secret: str, msg_id: str, timestamp: str, raw: bytes) -> str:
    """The Standard Webhooks signature from its definition, without the library: base64 of
    HMAC-SHA256 over `id.timestamp.body` with the base64-decoded key after `whsec_`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + raw, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def a_notification(store, tmp_path) -> tuple[str, dict]:
    """A real notification (id and body) as the outbox holds it."""
    cid = open_a_case(store)
    notified_round(store, cid)
    outbox = open_outbox(outbox_env(store, tmp_path))
    OutboxFollower(store, outbox).catch_up()
    row = outbox.rows()[0]
    return row["idempotency_key"], json.loads(row["body"])


def resend(url: str, raw: bytes, headers: dict[str, str]) -> httpx.Response:
    """Send a captured request again, as an attacker would: its headers, a body of their choosing."""
    kept = {k: v for k, v in headers.items() if k not in ("content-length", "host")}
    return httpx.post(url, content=raw, headers=kept)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def test_each_attempt_is_signed_under_the_one_id_with_its_own_timestamp(store, tmp_path, receiver):
    receiver.answer = lambda key, nth: 500 if nth == 1 else 200
    # Backoff over a second, so the two attempts of a row fall in different seconds.
    svc = service(store, tmp_path, receiver.url, retry=RetrySchedule(1.3, 1.3, 3600))
    with running(svc):
        cid = open_a_case(store)
        notified_round(store, cid)
        keys = expected_keys(store, cid)
        wait_for(lambda: svc.outbox.counts()["delivered"] == PER_ROUND, what="every notification delivered")

    assert set(receiver.accepted) == keys and not receiver.refused and not receiver.mismatched
    for key in keys:
        first, second = [r for r in receiver.requests if r.headers["webhook-id"] == key]
        assert first.raw == second.raw  # the same body: the same notification
        for r in (first, second):
            assert r.headers["webhook-signature"] == by_hand(SECRET, key, r.headers["webhook-timestamp"], r.raw)
            assert abs(int(r.headers["webhook-timestamp"]) - r.received_at) < 3  # this attempt's time
        assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
        assert second.headers["webhook-signature"] != first.headers["webhook-signature"]
        assert first.headers["content-type"] == "application/json"


def test_a_genuine_delivery_verifies_and_a_replay_of_it_is_dropped_by_id(store, tmp_path, receiver):
    key, body = a_notification(store, tmp_path)
    assert WebhookSender(receiver.url, SECRET).send(key, body) == 200
    (captured,) = receiver.requests

    replayed = resend(receiver.url, captured.raw, captured.headers)

    assert replayed.status_code == 200  # within the tolerance it verifies: the id is what tells
    assert receiver.seen[key] == 2 and list(receiver.accepted) == [key]  # ... and it is processed once
    assert receiver.accepted[key] == body and not receiver.refused


def test_a_delivery_replayed_after_the_tolerance_is_refused(store, tmp_path, receiver):
    key, body = a_notification(store, tmp_path)
    # A genuine request, signed with the right secret, made six minutes ago (captured, sent again now).
    old = WebhookSender(receiver.url, SECRET, clock=lambda: time.time() - TOLERANCE - 60)

    with pytest.raises(DeliveryFailed, match="answered 401"):
        old.send(key, body)

    assert receiver.refused == [(key, "Message timestamp too old")] and not receiver.accepted


def test_a_captured_delivery_with_a_refreshed_timestamp_is_refused(store, tmp_path, receiver):
    key, body = a_notification(store, tmp_path)
    text = payload(body)
    captured = WebhookSender(receiver.url, SECRET, clock=lambda: time.time() - 3600).headers(key, text)  # an hour old
    refreshed = {**captured, "webhook-timestamp": str(int(time.time()))}  # the attacker cannot re-sign it
    raw = text.encode()

    answer = resend(receiver.url, raw, refreshed)

    assert answer.status_code == 401
    assert receiver.refused == [(key, "No matching signature found")] and not receiver.accepted


def test_a_delivery_signed_with_another_secret_is_refused(store, tmp_path, receiver):
    key, body = a_notification(store, tmp_path)
    with pytest.raises(DeliveryFailed, match="answered 401"):
        WebhookSender(receiver.url, OTHER_SECRET).send(key, body)
    assert receiver.refused == [(key, "No matching signature found")] and not receiver.accepted


def test_a_tampered_body_is_refused(store, tmp_path, receiver):
    key, body = a_notification(store, tmp_path)
    WebhookSender(receiver.url, SECRET).send(key, body)
    (captured,) = receiver.requests
    tampered = captured.raw.replace(b'"priority":"high"', b'"priority":"urgent"')
    assert tampered != captured.raw

    answer = resend(receiver.url, tampered, captured.headers)

    assert answer.status_code == 401
    assert receiver.refused == [(key, "No matching signature found")]
    assert receiver.accepted[key]["case"]["priority"] == "high"  # only the genuine one was processed


def test_an_unsigned_or_future_dated_delivery_is_refused(store, tmp_path, receiver):
    key, body = a_notification(store, tmp_path)
    with pytest.raises(DeliveryFailed, match="answered 401"):
        WebhookSender(receiver.url, None).send(key, body)
    with pytest.raises(DeliveryFailed, match="answered 401"):
        WebhookSender(receiver.url, SECRET, clock=lambda: time.time() + TOLERANCE + 60).send(key, body)
    assert receiver.refused == [(key, "Missing required headers"), (key, "Message timestamp too new")]
    assert not receiver.accepted


def test_the_signature_header_has_the_standard_form(store, tmp_path, receiver):
    key, body = a_notification(store, tmp_path)
    WebhookSender(receiver.url, SECRET).send(key, body)
    (r,) = receiver.requests
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", r.headers["webhook-signature"])  # 32 bytes of HMAC-SHA256
    assert re.fullmatch(r"\d{10}", r.headers["webhook-timestamp"])
    assert r.headers["webhook-id"] == r.headers["idempotency-key"] == key == json.loads(r.raw)["notification_id"]
