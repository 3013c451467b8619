"""Delivering the outbox: each pending row POSTed to the webhook with its idempotency key until the
receiver acknowledges it, each row on its own backoff, for hours.

At least once, with the same key every time: a row is marked delivered only after a 2xx, so a crash
between the POST and the mark sends it again. Head-of-line free: rows are sent concurrently with a
bounded timeout each, and a failing row waits out its own backoff while the others go on. A row that
is still refused when its horizon has passed is marked dead, logged, and kept.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from activities.notify import DeliveryFailed, WebhookSender
from activities.outbox import Outbox, OutboxFollower, Pending, open_outbox
from casework.config import Settings, outbox_env
from domain.store import CaseStore

log = structlog.get_logger("casework.notify")


@dataclass(frozen=True)
class RetrySchedule:
    initial_seconds: float = 2.0
    max_seconds: float = 900.0
    give_up_after_seconds: float = 24 * 3600.0  # from the first attempt

    def delay(self, attempts: int) -> float:
        """The wait after the `attempts`-th failure: doubling, capped, with a little jitter so rows
        refused together do not come back together."""
        base = min(self.initial_seconds * 2 ** min(attempts - 1, 60), self.max_seconds)
        return base * random.uniform(0.85, 1.0)


class Deliverer:
    def __init__(self, outbox: Outbox, sender: WebhookSender | None, retry: RetrySchedule = RetrySchedule(),
                 concurrency: int = 8, wake: threading.Event | None = None, poll_seconds: float = 0.5) -> None:
        self.outbox, self.sender, self.retry, self.concurrency = outbox, sender, retry, concurrency
        self.wake = wake or threading.Event()
        self.poll = poll_seconds

    def deliver(self, row: Pending) -> None:
        started = time.time()
        first = row.first_attempt_at or started
        attempts = row.attempts + 1
        if self.sender is None:  # no webhook: the log line was the notification
            self.outbox.mark(row.key, attempts=attempts, first_attempt_at=first, delivered_at=started,
                             delivered_to="log", last_error=None)
            return
        try:
            status = self.sender.send(row.key, row.body)
        except DeliveryFailed as err:
            now = time.time()
            if now - first >= self.retry.give_up_after_seconds:
                self.outbox.mark(row.key, attempts=attempts, first_attempt_at=first, dead_at=now,
                                 last_error=str(err))
                log.error("notification_dead", key=row.key, case_id=row.body.get("case_id"),
                          event_type=row.body.get("event_type"), attempts=attempts, error=str(err),
                          trying_since=datetime.fromtimestamp(first, UTC).isoformat())
                return
            delay = self.retry.delay(attempts)
            self.outbox.mark(row.key, attempts=attempts, first_attempt_at=first, next_attempt_at=now + delay,
                             last_error=str(err))
            log.warning("notification_retry", key=row.key, attempt=attempts, error=str(err),
                        retry_in=round(delay, 3))
            return
        self.outbox.mark(row.key, attempts=attempts, first_attempt_at=first, delivered_at=time.time(),
                         delivered_to=self.sender.url, last_error=None)
        log.info("notification_delivered", key=row.key, attempt=attempts, status=status)

    def _deliver_logged(self, row: Pending) -> None:
        try:
            self.deliver(row)
        except Exception:  # noqa: BLE001 - the row stays pending and is tried again
            log.exception("notification_delivery_failed", key=row.key)
            time.sleep(1.0)

    def run(self, stop: threading.Event) -> None:
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="notify-deliver")
        inflight: dict[str, Future] = {}
        try:
            while not stop.is_set():
                try:
                    if free := self.concurrency - len(inflight):
                        for row in self.outbox.due(time.time(), free, exclude=list(inflight)):
                            inflight[row.key] = pool.submit(self._deliver_logged, row)
                except Exception:  # noqa: BLE001 - a locked or unreachable outbox: wait and look again
                    log.exception("outbox_read_failed")
                    stop.wait(1.0)
                if inflight:
                    wait(list(inflight.values()), timeout=self.poll, return_when=FIRST_COMPLETED)
                else:
                    self.wake.wait(self.poll)
                self.wake.clear()
                for key in [k for k, f in inflight.items() if f.done()]:
                    del inflight[key]
        finally:
            # Requests in flight finish within their timeout; an unmarked one is sent again next time.
            pool.shutdown(wait=False, cancel_futures=True)


class NotificationService:
    """The follower and the deliverer of one outbox, run only while holding its lock (one per outbox)."""

    def __init__(self, store: CaseStore, outbox: Outbox, sender: WebhookSender | None,
                 retry: RetrySchedule = RetrySchedule(), concurrency: int = 8, idle_seconds: float = 0.2) -> None:
        wake = threading.Event()
        self.outbox = outbox
        self.follower = OutboxFollower(store, outbox, wake=wake)
        self.deliverer = Deliverer(outbox, sender, retry, concurrency, wake)
        self.idle = idle_seconds

    def run(self, stop: threading.Event) -> None:
        waiting = False
        while not stop.is_set():
            try:
                with self.outbox.exclusive() as held:
                    if held:
                        log.info("notifications_started", webhook=self.deliverer.sender.url
                                 if self.deliverer.sender else None)
                        self._serve(stop)
                        return
            except Exception:  # noqa: BLE001 - e.g. the outbox's database is not reachable yet
                log.exception("notifications_failed")
            if not waiting:
                log.warning("notifications_standby", reason="another deliverer holds the outbox lock")
                waiting = True
            stop.wait(2.0)

    def _serve(self, stop: threading.Event) -> None:
        follower = threading.Thread(target=self.follower.run, args=(stop, self.idle),
                                    name="notify-follower", daemon=True)
        follower.start()
        try:
            self.deliverer.run(stop)
        finally:
            follower.join(10)
            if self.deliverer.sender:
                self.deliverer.sender.close()


def service_for(settings: Settings, store: CaseStore) -> NotificationService:
    sender = WebhookSender(settings.webhook_url, settings.webhook_timeout_seconds) if settings.webhook_url else None
    retry = RetrySchedule(settings.notify_retry_initial_seconds, settings.notify_retry_max_seconds,
                          settings.notify_give_up_hours * 3600)
    return NotificationService(store, open_outbox(outbox_env(settings)), sender, retry, settings.notify_concurrency)


@contextlib.contextmanager
def running(service: NotificationService) -> Iterator[threading.Event]:
    """The service on a thread of its own while the block runs; yields its stop event."""
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), name="notifications", daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(15)
