"""POSTing one notification to the webhook: signed the Standard Webhooks way, within one deadline.

Headers of each attempt: `webhook-id` (the notification id, the same on every attempt, so a receiver
drops retries it has seen), `webhook-timestamp` (this attempt's time, Unix seconds) and
`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the `whsec_` secret,
made by the `standardwebhooks` library, which receivers use to verify); `Idempotency-Key` repeats the
id for receivers written against the earlier contract.

httpx's timeouts bound each connect, write and read, not the whole exchange: a receiver that
trickles its answer a byte at a time can hold a plain httpx request forever. So every attempt runs
on an asyncio loop of the sender's own under `asyncio.timeout`, which cancels it, and closes its
connection, when the deadline passes; the deliverer's threads wait on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

ANSWER_READ_LIMIT = 64 * 1024  # of the receiver's answer body; the status is what counts


class DeliveryFailed(Exception):
    """The receiver did not acknowledge (no answer in time, refused connection, or a non-2xx status)."""


def payload(body: dict[str, Any]) -> str:
    """The exact text that is signed and sent."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class WebhookSender:
    """Sends bodies for the deliverer's threads over one connection pool; unsigned when `secret` is
    None (allowed only by an explicit setting, see activities/delivery.py)."""

    def __init__(self, url: str, secret: str | None, timeout_seconds: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self.timeout = timeout_seconds
        self._signer = Webhook(secret) if secret else None
        self._clock = clock  # the attempt's timestamp (a test replays old deliveries with it)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def signed(self) -> bool:
        return self._signer is not None

    def headers(self, notification_id: str, text: str) -> dict[str, str]:
        at = math.floor(self._clock())
        headers = {"webhook-id": notification_id, "webhook-timestamp": str(at),
                   "Idempotency-Key": notification_id, "Content-Type": "application/json"}
        if self._signer is not None:
            headers["webhook-signature"] = self._signer.sign(notification_id, datetime.fromtimestamp(at, UTC), text)
        return headers

    def send(self, notification_id: str, body: dict[str, Any]) -> int:
        """One attempt; the 2xx status, or DeliveryFailed. Returns within the deadline (plus a moment)."""
        try:
            future = asyncio.run_coroutine_threadsafe(self._post(notification_id, payload(body)), self._running())
            return future.result()
        except concurrent.futures.CancelledError:
            raise DeliveryFailed("cancelled: the deliverer stopped during the attempt") from None
        except RuntimeError as err:  # the loop was closed under us by close()
            raise DeliveryFailed(f"the sender was closed: {err}") from None

    async def _post(self, notification_id: str, text: str) -> int:
        assert self._client is not None
        headers = self.headers(notification_id, text)  # the timestamp of this very attempt
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream("POST", self.url, content=text.encode(), headers=headers) as answer:
                    received = 0
                    async for chunk in answer.aiter_raw():  # read a little so the connection can be reused
                        received += len(chunk)
                        if received >= ANSWER_READ_LIMIT:
                            break
        except TimeoutError:
            raise DeliveryFailed(f"Timeout: no complete answer within the attempt's deadline of "
                                 f"{self.timeout:g} s") from None
        except httpx.HTTPError as err:
            raise DeliveryFailed(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
        if not answer.is_success:
            raise DeliveryFailed(f"answered {answer.status_code}")
        return answer.status_code

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), follow_redirects=False,
                                                 headers={"User-Agent": "casework-notifier"})
                self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-sender", daemon=True)
                self._thread.start()
            return self._loop

    def close(self) -> None:
        """Cancel the attempts in flight (their rows are tried again) and close the connections."""
        with self._lock:
            loop, thread, client = self._loop, self._thread, self._client
            self._loop = self._thread = self._client = None
        if loop is None:
            return

        async def shutdown() -> None:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await client.aclose()  # type: ignore[union-attr]

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=self.timeout + 5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)  # type: ignore[union-attr]
            if not thread.is_alive():  # type: ignore[union-attr]
                loop.close()
