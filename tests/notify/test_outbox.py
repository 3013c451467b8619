"""Notifications are delivered from the event store through the outbox: at least once, with the same
key on every attempt, retried while a receiver is down, never lost, never holding an append; each
request signed, and verified by the receiver."""

from __future__ import annotations

import threading

import pytest

from activities.delivery import NotificationService, RetrySchedule, running
from activities.outbox import OutboxFollower, StaleBatch, open_outbox
from activities.webhook import WebhookSender
from casework.config import sqlite_env
from domain.store import CaseStore
from tests.notify.receiver import (
    PER_ROUND, SECRET, Hanging, Receiver, expected_keys, notified_round, open_a_case, wait_for,
)

FAST = RetrySchedule(initial_seconds=0.05, max_seconds=0.3, give_up_after_seconds=3600)


def outbox_env(store: CaseStore, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in store.env.items() if k.startswith(("PERSISTENCE_MODULE", "SQLITE_", "POSTGRES_"))}
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return sqlite_env(tmp_path / "outbox.db")
    return {**env, "POSTGRES_SCHEMA": "outbox"}


def service(store, tmp_path, url: str | None, retry: RetrySchedule = FAST, timeout: float = 2.0,
            secret: str | None = SECRET, public_base_url: str = ""):
    sender = WebhookSender(url, secret, timeout_seconds=timeout) if url else None
    return NotificationService(store, open_outbox(outbox_env(store, tmp_path)), sender, retry, concurrency=4,
                               idle_seconds=0.05, public_base_url=public_base_url)


def delivered(svc: NotificationService) -> int:
    return svc.outbox.counts()["delivered"]


def test_a_receiver_down_for_a_while_gets_every_notification_once_it_is_up(any_store, tmp_path):
    receiver = Receiver()  # not listening yet: connections are refused
    svc = service(any_store, tmp_path, receiver.url)
    with running(svc):
        cases = [open_a_case(any_store) for _ in range(3)]
        for cid in cases:
            notified_round(any_store, cid)
        keys = expected_keys(any_store, *cases)
        wait_for(lambda: svc.outbox.counts()["retrying"] == len(keys), what="every row refused at least once")
        wait_for(lambda: min(r["attempts"] for r in svc.outbox.rows()) >= 3, what="a few attempts each")
        receiver.start()
        wait_for(lambda: delivered(svc) == len(keys), what="every notification delivered")
    receiver.stop()

    assert len(keys) == 3 * PER_ROUND and set(receiver.accepted) == keys and not receiver.mismatched
    assert not receiver.refused  # every request verified with the shared secret
    rows = svc.outbox.rows()
    assert {r["idempotency_key"] for r in rows} == keys
    assert all(r["delivered_to"] == receiver.url and r["dead_at"] is None for r in rows)
    assert all("ConnectError" in (r["last_error"] or "ConnectError") for r in rows)
    assert {b["event"]["type"] for b in receiver.accepted.values()} == {
        "CaseEscalated", "AppointmentBooked", "RectificationRequired", "CaseDeEscalated", "SlaClockWarned",
        "SlaClockBreached", "CallbackAttempted"}


def test_a_receiver_failing_every_first_attempt_gets_each_notification_twice_with_one_key(any_store, tmp_path):
    receiver = Receiver(answer=lambda key, nth: 500 if nth == 1 else 200).start()
    svc = service(any_store, tmp_path, receiver.url)
    with running(svc):
        cases = [open_a_case(any_store) for _ in range(2)]
        for cid in cases:
            notified_round(any_store, cid)
        keys = expected_keys(any_store, *cases)
        wait_for(lambda: delivered(svc) == len(keys), what="every notification delivered")
    receiver.stop()

    assert set(receiver.accepted) == keys and not receiver.mismatched and not receiver.refused
    assert set(receiver.seen.values()) == {2}  # refused once, accepted once: never a third time
    assert all(r["attempts"] == 2 for r in svc.outbox.rows())


def test_a_dead_receiver_never_holds_an_append(store, tmp_path):
    dead = Hanging()  # the socket takes the connection, nobody ever answers
    svc = service(store, tmp_path, dead.url, timeout=0.5)
    with running(svc):
        cases = [open_a_case(store) for _ in range(5)]
        for cid in cases:
            notified_round(store, cid)  # returns while every delivery hangs
        keys = expected_keys(store, *cases)
        wait_for(lambda: svc.outbox.counts()["retrying"] == len(keys), what="every delivery timed out once")
        rows = svc.outbox.rows()
    dead.close()

    assert {r["idempotency_key"] for r in rows} == keys and not any(r["delivered_at"] for r in rows)
    assert all("Timeout" in r["last_error"] for r in rows)


def test_a_notification_past_its_horizon_is_marked_dead_kept_and_can_be_requeued(store, tmp_path, caplog):
    receiver = Receiver(answer=lambda key, nth: 503).start()
    svc = service(store, tmp_path, receiver.url, RetrySchedule(0.05, 0.1, give_up_after_seconds=0.5))
    with running(svc):
        cid = open_a_case(store)
        notified_round(store, cid)
        wait_for(lambda: svc.outbox.counts()["dead"] == PER_ROUND, what="the rows to give up")
    assert svc.outbox.counts() == {"total": PER_ROUND, "delivered": 0, "dead": PER_ROUND, "pending": 0,
                                   "retrying": 0}
    assert all(r["last_error"] == "answered 503" and r["attempts"] > 1 for r in svc.outbox.rows())

    receiver.answer = lambda key, nth: 200
    assert svc.outbox.requeue_dead(now=0) == PER_ROUND
    with running(svc):
        wait_for(lambda: delivered(svc) == PER_ROUND, what="the requeued rows delivered")
    receiver.stop()
    assert set(receiver.accepted) == expected_keys(store, cid)


def test_without_a_webhook_each_notification_is_logged_and_marked(store, tmp_path):
    svc = service(store, tmp_path, None)
    with running(svc):
        cid = open_a_case(store)
        notified_round(store, cid)
        wait_for(lambda: delivered(svc) == PER_ROUND, what="the rows marked")
    assert {r["delivered_to"] for r in svc.outbox.rows()} == {"log"}


def test_the_follower_refuses_a_batch_not_read_right_after_its_position(store, tmp_path):
    outbox = open_outbox(outbox_env(store, tmp_path))
    cid = open_a_case(store)
    notified_round(store, cid)
    first, second = OutboxFollower(store, outbox, batch_size=2), OutboxFollower(store, outbox, batch_size=2)
    first.step()
    position = outbox.position(store.name)

    with pytest.raises(StaleBatch):
        outbox.record([], store.name, after=0, last=position + 1, now=0)
    second.catch_up()
    first.catch_up()

    assert outbox.position(store.name) == store.recorder.max_notification_id()
    assert {r["idempotency_key"] for r in outbox.rows()} == expected_keys(store, cid)


def test_one_deliverer_per_outbox_the_other_waits_and_takes_over(store, tmp_path):
    receiver = Receiver().start()
    one, two = service(store, tmp_path, receiver.url), service(store, tmp_path, receiver.url)
    with running(one) as stop_one, running(two):
        cid = open_a_case(store)
        notified_round(store, cid)
        wait_for(lambda: delivered(one) == PER_ROUND, what="the first batch")
        stop_one.set()  # the first stops; the standby takes the lock and carries on
        notified_round(store, cid)
        wait_for(lambda: delivered(two) == 2 * PER_ROUND, what="the second batch, by the other deliverer")
    receiver.stop()
    assert set(receiver.accepted) == expected_keys(store, cid) and set(receiver.seen.values()) == {1}


def test_an_outbox_adopted_over_an_old_store_can_skip_its_history(store, tmp_path):
    outbox = open_outbox(outbox_env(store, tmp_path))
    old = open_a_case(store)
    notified_round(store, old)

    assert outbox.skip_to(store.name, store.recorder.max_notification_id()) == 10
    new = open_a_case(store)
    notified_round(store, new)
    OutboxFollower(store, outbox).catch_up()

    assert {r["idempotency_key"] for r in outbox.rows()} == expected_keys(store, new)
