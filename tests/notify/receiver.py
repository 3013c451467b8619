"""A real webhook receiver on 127.0.0.1 that verifies signatures the way receivers do (with the
standardwebhooks library), can be down, refuse, hang, trickle or accept, and remembers what it was
sent; and a few notified events appended straight to the store."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

from activities.notify import NOTIFIED, idempotency_key
from domain.events import (
    AppointmentBooked, CallbackAttempted, CaseDeEscalated, CaseEscalated, CaseOpened, NoteAdded,
    RectificationRequired, SlaClockBreached, SlaClockStarted, SlaClockWarned,
)
from domain.model import Actor, Role
from domain.store import CaseStore

SUPERVISOR = Actor(id="sup-sam", role=Role.supervisor)
# A test secret: `whsec_` + base64 of the 32 bytes b"casework-test-secret-32-bytes!!!".
SECRET = "whsec_Y2FzZXdvcmstdGVzdC1zZWNyZXQtMzItYnl0ZXMhISE="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Request:
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    received_at: float


class Receiver:
    """`answer(key, nth)` gives the status for the nth verified request carrying `key` (1-based).

    With a `secret` (the default) it verifies every request as a real receiver does, and refuses
    (401) one that does not verify; a verified one is processed once per `webhook-id` (`accepted`),
    a repeat is answered and dropped. With `secret=None` it takes bodies unverified."""

    def __init__(self, port: int | None = None, answer: Callable[[str, int], int] = lambda key, nth: 200,
                 delay: float = 0.0, secret: str | None = SECRET) -> None:
        self.port = port or free_port()
        self.answer, self.delay, self.secret = answer, delay, secret
        self.seen: Counter[str] = Counter()  # verified requests per webhook-id
        self.accepted: dict[str, dict] = {}  # webhook-id -> body, processed once
        self.requests: list[Request] = []  # everything that arrived, verified or not
        self.refused: list[tuple[str | None, str]] = []  # (webhook-id, what the verifier said)
        # Requests whose body ended before its Content-Length: a sender killed mid-request. Not
        # verified (they cannot be) and answered 400; the sender's retry delivers them.
        self.truncated: list[str | None] = []
        self.mismatched: list[tuple[str, str]] = []  # webhook-id != Idempotency-Key or body's notification_id
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/casework"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                raw = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                key = headers.get("webhook-id")
                if len(raw) < length:
                    with receiver.lock:
                        receiver.truncated.append(key)
                    self.reply(400)
                    return
                with receiver.lock:
                    receiver.requests.append(Request(headers, raw, time.time()))
                try:
                    body = Webhook(receiver.secret).verify(raw, headers) if receiver.secret else json.loads(raw)
                except WebhookVerificationError as err:
                    with receiver.lock:
                        receiver.refused.append((key, str(err)))
                    self.reply(401)
                    return
                with receiver.lock:
                    if not key == headers.get("idempotency-key") == body.get("notification_id"):
                        receiver.mismatched.append((key, body.get("notification_id")))
                    receiver.seen[key] += 1
                    status = receiver.answer(key, receiver.seen[key])
                time.sleep(receiver.delay)
                if status == 200:
                    with receiver.lock:
                        receiver.accepted.setdefault(key, body)  # a repeat of a processed id is dropped
                self.reply(status)

            def reply(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class Hanging:
    """A receiver that takes connections and never answers (a dead process behind a live socket)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/casework"

    def close(self) -> None:
        self.sock.close()


class Trickler:
    """A receiver that reads the request, then answers one byte every `every` seconds (a status line,
    then a header that goes on) and completes only after `seconds`: each read arrives well within any
    read timeout. Records each connection's webhook-id, when it started and when it ended."""

    def __init__(self, every: float = 0.1, seconds: float = 60.0) -> None:
        self.every, self.seconds = every, seconds
        self.fast = False  # answer 200 at once instead
        self.held: list[tuple[str, float, float, bool]] = []  # (webhook-id, start, end, trickled)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/casework"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        start, key, trickled = time.monotonic(), "", not self.fast
        with conn:
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536) or b"\r\n\r\n"
                head, _, rest = data.partition(b"\r\n\r\n")
                fields = {k.lower(): v for k, _, v in
                          (line.partition(": ") for line in head.decode().split("\r\n")[1:])}
                key, length = fields.get("webhook-id", ""), int(fields.get("content-length", "0"))
                while len(rest) < length:
                    rest += conn.recv(65536) or b"x" * length
                if not trickled:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    while time.monotonic() < start + self.seconds:
                        conn.sendall(b"a")
                        time.sleep(self.every)
                    conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass  # the client hung up
        self.held.append((key, start, time.monotonic(), trickled))

    def close(self) -> None:
        self.sock.close()


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _base(case_id: str, command_id: str, at: datetime, actor: Actor = SUPERVISOR) -> dict:
    return {"case_id": case_id, "command_id": command_id, "actor": actor, "at": at, "recorded_at": at}


def open_a_case(store: CaseStore) -> str:
    case_id, at = str(uuid.uuid4()), datetime.now(UTC)
    store.append(f"open-{case_id}", [CaseOpened(
        **_base(case_id, f"open-{case_id}", at, Actor(id="agent-alice", role=Role.agent)), source=None,
        customer={"id": "cust-1", "name": "Wang Fang"}, channel="email", category="fault", priority="high",
        subject="Printer offline", description="The office printer does not answer.", assignee="agent-alice",
        team="first-line")])
    return case_id


def notified_round(store: CaseStore, case_id: str) -> None:
    """One round of every notified event type on a case, each appended as its own command, with two
    that are not notified (a clock start, a note): seven notifications."""
    at, due = datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1)
    clock = f"resolution-{uuid.uuid4().hex[:6]}"

    def make(cls, **fields):
        return cls(**_base(case_id, str(uuid.uuid4()), at), **fields)

    steps = [
        make(SlaClockStarted, clock=clock, target=timedelta(hours=1), due=due),
        make(SlaClockWarned, clock=clock, share=0.75, due=due),
        make(SlaClockBreached, clock=clock, due=due),
        make(CaseEscalated, level=1, level_name="team_lead", owner="lead-li", cause="supervisor",
             reason="customer called twice"),
        make(AppointmentBooked, appointment={"at": at + timedelta(days=1), "place": "Floor 3",
                                             "need": "replace the NIC"}),
        make(NoteAdded, text="spare part ordered"),
        make(RectificationRequired, reason="label missing on the unit"),
        make(CallbackAttempted, attempt=1, channel="survey_request", next_due=at + timedelta(days=2)),
        make(CaseDeEscalated, level=0, level_name="agent", owner="agent-alice", reason="back on track"),
    ]
    for event in steps:
        store.append(event.command_id, [event])


PER_ROUND = 7


def expected_keys(store: CaseStore, *case_ids: str) -> set[str]:
    return {idempotency_key(cid, version) for cid in case_ids
            for version, event in enumerate(store.history(cid), start=1) if event.type in NOTIFIED}
