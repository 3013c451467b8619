"""Load and fault harness: `python -m bench.fault --cases 1000` drives cases on random valid paths,
mixed with bad commands, while the worker is SIGKILLed and restarted at random moments and the
file-backed Temporal dev server restarts once; then checks every case, the event store and the
read models, and prints the counts as JSON (events lost and doubled must be 0)."""

from __future__ import annotations

import argparse
import asyncio
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
from collections import Counter
from pathlib import Path

from temporalio.client import WorkflowUpdateFailedError

from casework.client import CaseNotFound, CaseworkClient, CommandRefused, connect
from casework.config import sqlite_env, temporal_binary
from casework.demo import FIELDS, PATHS, actor_for, demo_opening
from domain.commands import COMMAND_ADAPTER
from domain.ids import workflow_id_for
from domain.model import Actor, Role
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view, rebuild
from workflows.contract import SEARCH_ATTRIBUTES

FINAL_STAGE = {"resolved": "closed", "first_contact": "closed", "clarified": "closed", "reopened": "closed",
               "escalated": "closed", "cancelled": "closed", "open": "response", "waiting": "needs_clarification"}
LIFECYCLE_EVENTS = {"respond": ["ResponseSent"], "propose_solution": ["SolutionProposed"],
                    "start_follow_up": ["FollowUpStarted"], "confirm_solution": ["SolutionConfirmed", "CaseClosed"],
                    "request_clarification": ["ClarificationRequested"], "record_customer_reply": ["CustomerReplied"],
                    "reject_solution": ["SolutionRejected"], "escalate": ["CaseEscalated"],
                    "acknowledge": ["EscalationAcknowledged"], "close": ["CaseClosed"]}
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A file-backed dev server and a `casework run` worker, each in its own process."""

    def __init__(self, data: Path) -> None:
        self.data, self.port = data, free_port()
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.kills = self.server_restarts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start_server(self) -> None:
        args = [temporal_binary(), "server", "start-dev", "--headless", "--port", str(self.port),
                "--db-filename", str(self.data / "temporal.db"), "--log-level", "error"]
        for key in SEARCH_ATTRIBUTES:
            args += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title().replace('_', '')}"]
        self.server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "the dev server did not start"
                time.sleep(0.2)

    def start_worker(self) -> None:
        env = {**os.environ, "CASEWORK_TEMPORAL_ADDRESS": self.address, "CASEWORK_DATA_DIR": str(self.data),
               "CASEWORK_LOG_LEVEL": "error", "PATH": f"{BIN}:{os.environ['PATH']}"}
        self.worker = subprocess.Popen([str(BIN / "casework"), "run"], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait()
        self.kills += 1

    def restart_server(self) -> None:
        assert self.server is not None
        self.server.terminate()
        self.server.wait(30)
        self.start_server()
        self.server_restarts += 1

    def stop(self) -> None:
        for proc in (self.worker, self.server):
            if proc and proc.poll() is None:
                proc.terminate()
                proc.wait(30)


async def with_retries(fn, attempts: int = 200):
    """Commands carry their id, so sending again after an outage is safe."""
    for i in range(attempts):
        try:
            # Short: a command stuck on a killed worker is sent again (same id) to the next one.
            return await asyncio.wait_for(fn(), 8)
        except (CommandRefused, CaseNotFound, WorkflowUpdateFailedError):
            raise  # a definite answer, not an outage
        except Exception:  # noqa: BLE001 - a killed worker or a restarting server
            if i == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    return None


async def bad_command(cases: CaseworkClient, client, case_id: str, rng: random.Random) -> str:
    """One refused command of a random kind; returns its kind, or raises if it was accepted."""
    kind = rng.choice(["wrong_stage", "malformed", "unknown_case", "wrong_role"])
    try:
        if kind == "wrong_stage":
            await with_retries(lambda: cases.send(case_id, COMMAND_ADAPTER.validate_python(
                {"kind": "record_rectification", "command_id": str(uuid.uuid4()),
                 "actor": Actor(id="sup-sam", role=Role.supervisor), "note": "x"})))
        elif kind == "malformed":
            handle = client.get_workflow_handle(workflow_id_for(case_id))
            await with_retries(lambda: handle.execute_update("respond", {"command_id": str(uuid.uuid4())}))
        elif kind == "unknown_case":
            await with_retries(lambda: cases.send(str(uuid.uuid4()), COMMAND_ADAPTER.validate_python(
                {"kind": "add_note", "command_id": str(uuid.uuid4()), "actor": actor_for("add_note", rng, "c"),
                 "text": "x"})))
        else:
            await with_retries(lambda: cases.send(case_id, COMMAND_ADAPTER.validate_python(
                {"kind": "add_note", "command_id": str(uuid.uuid4()),
                 "actor": Actor(id="c", role=Role.customer), "text": "x"})))
    except Exception as err:  # noqa: BLE001 - refused, as it should be
        if isinstance(err, (CommandRefused, CaseNotFound, WorkflowUpdateFailedError)):
            return kind
        raise
    raise AssertionError(f"bad command {kind} was accepted")


async def run(cases_n: int, concurrency: int, seed: int, kill_every: tuple[float, float] = (4, 10)) -> dict:
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="casework-fault-"))
    cluster = Cluster(tmp)
    cluster.start_server()
    cluster.start_worker()
    client = await connect(cluster.address)
    cases = CaseworkClient(client)
    plan: dict[str, tuple[str, list[str]]] = {}
    refused: Counter = Counter()
    commands = 0
    done = asyncio.Event()

    async def chaos() -> None:
        restarted_server = False
        while not done.is_set():
            await asyncio.sleep(rng.uniform(*kill_every))  # a restarted worker gets a few seconds' work done
            if done.is_set():
                break
            cluster.kill_worker()
            if not restarted_server and cluster.kills >= 2:
                cluster.restart_server()
                restarted_server = True
            await asyncio.sleep(rng.uniform(0.2, 2))
            cluster.start_worker()

    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal commands
        async with sem:
            path = rng.choice(sorted(PATHS))
            opening = demo_opening(rng, i)
            state = await with_retries(lambda: cases.open_case(opening))
            commands += 1
            sent = []
            for kind in PATHS[path]:
                if rng.random() < 0.15:
                    refused[await bad_command(cases, client, state.case_id, rng)] += 1
                cmd = COMMAND_ADAPTER.validate_python({"kind": kind, "command_id": str(uuid.uuid4()),
                                                       "actor": actor_for(kind, rng, opening.customer.id),
                                                       **FIELDS[kind]})
                try:
                    await with_retries(lambda: cases.send(state.case_id, cmd))
                    sent.append(kind)
                except CommandRefused:
                    refused["refused_by_rules"] += 1  # e.g. an urgent case already escalated to the top
                commands += 1
            plan[state.case_id] = (path, sent)

    chaos_task = asyncio.create_task(chaos())
    start = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(cases_n)))
    elapsed = time.monotonic() - start
    done.set()
    await chaos_task
    if cluster.worker is None or cluster.worker.poll() is not None:
        cluster.start_worker()

    # Checks: every case where its path says, each expected lifecycle event stored exactly once.
    store = CaseStore(env=sqlite_env(tmp / "events.db"))
    wrong_state = lost = doubled = 0
    lifecycle = {t for ts in LIFECYCLE_EVENTS.values() for t in ts} - {"CaseEscalated"} | {"CaseOpened"}
    for case_id, (path, sent) in plan.items():
        state = await with_retries(lambda: cases.state(case_id))
        wrong_state += state.stage.value != FINAL_STAGE[path] and len(sent) == len(PATHS[path])
        history = store.history(case_id)
        # Escalations also come from the clocks, so they are counted by command id below only.
        stored = Counter(e.type for e in history if e.type in lifecycle)
        expected = Counter(["CaseOpened", *(t for k in sent for t in LIFECYCLE_EVENTS[k] if t in lifecycle)])
        lost += sum((expected - stored).values())
        doubled += sum((stored - expected).values())
        once = Counter((e.command_id, e.type) for e in history if e.type in lifecycle | {"CaseEscalated"})
        doubled += sum(n - 1 for n in once.values() if n > 1)

    # The read models the worker kept equal a rebuild from the events.
    reporting = sqlite_env(tmp / "reporting.db")
    view = open_view(reporting)
    projection = ReportProjection(store, view)
    deadline = time.monotonic() + 120
    while projection.lag().events_behind and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    cluster.stop()  # nothing writes now
    projection.catch_up()
    tables = ("cases", "sla_clocks", "escalations", "agent_activity", "surveys")
    live = {t: view.query(f"SELECT * FROM {{{t}}} ORDER BY 1, 2") for t in tables}
    rebuild(store, reporting)
    rebuilt = {t: view.query(f"SELECT * FROM {{{t}}} ORDER BY 1, 2") for t in tables}
    return {"cases": len(plan), "commands": commands, "bad_commands_refused": sum(refused.values()),
            "refused_by_kind": dict(refused), "worker_kills": cluster.kills,
            "server_restarts": cluster.server_restarts, "seconds": round(elapsed, 1),
            "cases_in_wrong_state": int(wrong_state), "events_lost": lost, "events_doubled": doubled,
            "read_models_equal_rebuild": live == rebuilt, "data_dir": str(tmp)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--kill-every", type=float, nargs=2, default=(4, 10), metavar=("MIN_S", "MAX_S"))
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.cases, args.concurrency, args.seed, tuple(args.kill_every))), indent=2))


if __name__ == "__main__":
    main()
