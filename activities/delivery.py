"""Delivering the outbox: each pending row POSTed to the webhook, signed, with its notification id
until the receiver acknowledges it, each row on its own backoff, for hours.

At least once, with the same id every time: a row is marked delivered only after a 2xx, so a crash
between the POST and the mark sends it again. Head-of-line free: rows are sent concurrently, each
attempt within an overall deadline, and a failing row waits out its own backoff while the others go
on. A row that is still refused when its horizon has passed is marked dead, logged, and kept.

A webhook is signed (activities/webhook.py) unless unsigned delivery is allowed outright: without a
secret the deliverer refuses to start rather than post bodies a receiver cannot authenticate.
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
from urllib.parse import urlsplit

import structlog

from activities.outbox import Outbox, OutboxFollower, Pending, open_outbox
from activities.webhook import DeliveryFailed, WebhookSender
from casework.config import ConfigError, Settings, outbox_env
from casework.logs import never_log, safe_url
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
                log.error("notification_dead", key=row.key, case_id=row.case_id,
                          event_type=row.event_type, attempts=attempts, error=str(err),
                          trying_since=datetime.fromtimestamp(first, UTC).isoformat())
                return
            delay = self.retry.delay(attempts)
            self.outbox.mark(row.key, attempts=attempts, first_attempt_at=first, next_attempt_at=now + delay,
                             last_error=str(err))
            log.warning("notification_retry", key=row.key, attempt=attempts, error=str(err),
                        retry_in=round(delay, 3))
            return
        self.outbox.mark(row.key, attempts=attempts, first_attempt_at=first, delivered_at=time.time(),
                         delivered_to=safe_url(self.sender.url), last_error=None)
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
            # Attempts in flight end by their deadline or are cancelled by the sender's close(); an
            # unmarked row is sent again next time.
            pool.shutdown(wait=False, cancel_futures=True)


class NotificationService:
    """The follower and the deliverer of one outbox, run only while holding its lock (one per outbox)."""

    def __init__(self, store: CaseStore, outbox: Outbox, sender: WebhookSender | None,
                 retry: RetrySchedule = RetrySchedule(), concurrency: int = 8, idle_seconds: float = 0.2,
                 public_base_url: str = "") -> None:
        wake = threading.Event()
        self.outbox = outbox
        self.follower = OutboxFollower(store, outbox, wake=wake, public_base_url=public_base_url)
        self.deliverer = Deliverer(outbox, sender, retry, concurrency, wake)
        self.idle = idle_seconds

    def run(self, stop: threading.Event) -> None:
        waiting = False
        while not stop.is_set():
            try:
                with self.outbox.exclusive() as held:
                    if held:
                        sender = self.deliverer.sender
                        log.info("notifications_started", webhook=safe_url(sender.url, origin_only=True)
                                 if sender else None, signed=sender.signed if sender else None)
                        self._serve(stop)
                        return
            except Exception:  # noqa: BLE001 - e.g. the outbox's database is not reachable yet
                log.exception("notifications_failed")
            if not waiting:
                log.warning("notifications_standby", why="another deliverer holds the outbox lock")
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


def sender_for(settings: Settings) -> WebhookSender | None:
    """The webhook sender the settings ask for: signed with the configured secret; unsigned only when
    CASEWORK_WEBHOOK_ALLOW_UNSIGNED says so (and then said loudly); else ConfigError."""
    url = settings.webhook_url
    if not url:
        return None
    secret = settings.webhook_signing_secret()
    parts = urlsplit(url)
    never_log(secret, url, parts.query, parts.password or "")  # wherever they might turn up in a log line
    if not secret and not settings.webhook_allow_unsigned:
        raise ConfigError(
            "CASEWORK_WEBHOOK_URL is set but there is no signing secret: set CASEWORK_WEBHOOK_SECRET (or "
            "CASEWORK_WEBHOOK_SECRET_FILE) to a 'whsec_...' secret shared with the receiver, or, for "
            "development only, CASEWORK_WEBHOOK_ALLOW_UNSIGNED=true")
    webhook = safe_url(url, origin_only=True)
    if not secret:
        log.warning("webhooks_unsigned", webhook=webhook, setting="CASEWORK_WEBHOOK_ALLOW_UNSIGNED=true",
                    warning="webhook deliveries are NOT signed: a receiver cannot tell them from forgeries; "
                            "development only")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        log.warning("webhook_not_https", webhook=webhook,
                    warning="bodies carry case data and travel unencrypted; use https")
    return WebhookSender(url, secret or None, settings.webhook_timeout_seconds)


def service_for(settings: Settings, store: CaseStore, sender: WebhookSender | None = None) -> NotificationService:
    """`sender`: from `sender_for(settings)` already (checked before the store was opened)."""
    sender = sender or sender_for(settings)  # a refused configuration touches no database
    retry = RetrySchedule(settings.notify_retry_initial_seconds, settings.notify_retry_max_seconds,
                          settings.notify_give_up_hours * 3600)
    return NotificationService(store, open_outbox(outbox_env(settings)), sender, retry,
                               settings.notify_concurrency, public_base_url=settings.public_base_url)


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
