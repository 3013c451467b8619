"""Many open cases waiting on timers, reached the way a service desk migrating its open tickets
reaches them: a synthetic export of the old desk's open tickets (each with its SLA clocks running,
deadlines hours to days away), imported by the importer, then handed to the engine by the importer's
`start_live` (bounded concurrency). The worker's RSS (/proc/<pid>/status) is read as the cases start
and while they are held; then commands are sent to a few of the first cases handed over (long evicted
from the worker's sticky cache: they replay their history and answer), and a few probe cases'
first-response timers, due during the hold, are checked to fire at their due instants.

`python -m bench.run --only hold --hold-cases 100000 --hold-minutes 10` (bench/README.md, "Timers at
scale"). Against a separate `casework run` worker and file-backed dev server, as processes (bench/fault.py's
`Cluster`), as bench/timers.py. A line of progress goes to `progress.jsonl` in the run's directory
(and stderr) every `SAMPLE` seconds: a run stopped early still says what it reached.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from bench.fault import BIN, Cluster, Config
from bench.lifecycle import AGENT
from bench.timers import rss_mib, spread, worker_cache
from casework.client import CaseworkClient
from casework.importer import LiveStarts, load_mapping, start_live
from casework.policy import load_policy
from casework.stores import open_case_store
from domain.commands import Respond
from domain.ids import case_id_for, workflow_id_for
from domain.model import SourceRef

SAMPLE = 10.0  # seconds between progress lines
SOURCE = "olddesk"

# The old desk's export, as the importer reads it (docs/import.md): one row per status change.
MAPPING = f"""
source = "{SOURCE}"

[columns]
case = "ticket"
activity = "status"
timestamp = "time"
resource = "who"
[columns.attributes]
priority = "prio"

[open]
customer = "cust-{{case}}"
category = "fault"
channel = "email"
priority = "{{priority}}"
subject = "Ticket {{case}}"

[activities]
"New" = {{ action = "add_note", fields = {{ text = "new ticket" }} }}
"Take in charge" = {{ stage = "response" }}
"""


def write_policy(path: Path, probe_first_response: timedelta) -> None:
    """Round the clock; a ticket's clocks run 2 to 8 days; urgent tickets (the probes) answer sooner."""
    path.write_text(f"""# bench/hold.py: open tickets whose clocks wait days; the probes' first response falls in the hold
version = "bench-hold"
warn_at = [0.5]

[calendars.desk]
timezone = "UTC"
always_open = true

[[targets]]
first_response_hours = 48
next_response_hours = 48
resolution_hours = 192
calendar = "desk"
source = "bench: deadlines days away"

[[targets]]
priority = "urgent"
first_response_hours = {probe_first_response.total_seconds() / 3600}
next_response_hours = 48
resolution_hours = 192
calendar = "desk"
source = "bench: the probes' first response falls due during the hold"

[[ladder]]
name = "agent"

[[ladder]]
name = "team_lead"
owner = "team-lead-on-duty"
""")
    load_policy(path)


def write_log(directory: Path, cases: int, probes: int, now: datetime, shard: int) -> list[tuple[Path, list[str]]]:
    """`cases` open tickets in files of `shard` tickets (the old desk exported by queue): the first
    `probes` urgent, opened a minute ago; the rest opened over the three hours before the last hour,
    every second one taken in charge 20 minutes after it opened (its first response stopped, its
    resolution clock running). Returns each file with its tickets' case ids, in the file's order."""
    span, files = timedelta(hours=3), []
    for first in range(0, cases, shard):
        path, ids = directory / f"open_tickets_{first // shard:03d}.csv", []
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["ticket", "status", "time", "who", "prio"])
            for i in range(first, min(cases, first + shard)):
                ticket = f"T{i:07d}"
                ids.append(case_id_for(SourceRef(system=SOURCE, external_id=ticket)))
                if i < probes:
                    out.writerow([ticket, "New", (now - timedelta(minutes=1)).isoformat(), "ann", "urgent"])
                    continue
                opened = now - timedelta(hours=1) - span * (i / cases)
                out.writerow([ticket, "New", opened.isoformat(), "ann", "normal"])
                if i % 2:
                    out.writerow([ticket, "Take in charge", (opened + timedelta(minutes=20)).isoformat(), "bob",
                                  "normal"])
        files.append((path, ids))
    return files


def proc_rss(proc) -> float:
    return round(rss_mib(proc.pid), 1) if proc is not None and proc.poll() is None else 0.0


def cpu_s(proc) -> float:
    """CPU seconds (user + system) the process has used: /proc/<pid>/stat fields 14 and 15."""
    if proc is None or proc.poll() is not None:
        return 0.0
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def db_mib(root: Path) -> float:
    """The dev server's SQLite file and its write-ahead log."""
    return round(sum(p.stat().st_size for p in root.glob("temporal.db*")) / 2**20, 1)


async def run(root: Path, cases: int, hold_seconds: float, step: int = 5000, concurrency: int = 16,
              probes: int = 3, replay_checks: int = 5, fire_after: timedelta | None = None,
              sample: float = SAMPLE, server_pragmas: tuple[str, ...] = (),
              worker_env: dict[str, str] | None = None, handover_by: float | None = None,
              shard: int = 10_000) -> dict:
    """Import `cases` open tickets, hand them to the engine, hold them `hold_seconds`, then check.
    The tickets come in files of `shard`, each imported by the real command line (`casework import
    --no-live`, a process of its own) while the cases of the files imported before are handed over
    (`start_live`, `concurrency` starts in flight). RSS is recorded every `step` cases started.
    `fire_after`: the probes' first response after their opening (default: the middle of the
    hand-over's time, or of the expected run). `handover_by`: seconds from the run's start after
    which no more cases are handed over (the rest of the run goes on with those started: on a
    shared machine a run has to end in time and say what it reached)."""
    run_start = time.perf_counter()
    cluster = Cluster(root, Config(workers=1, log_level="warning", server_pragmas=server_pragmas), None)
    policy = root / "hold_policy.toml"
    now = datetime.now(UTC).replace(microsecond=0)
    cluster.base["CASEWORK_SLA_POLICY"] = str(policy)
    cluster.base.update(worker_env or {})  # CASEWORK_* settings of the worker (casework/config.py)
    progress_file = root / "progress.jsonl"
    out: dict = {"cases": cases, "concurrency": concurrency, "step": step, "shard": shard,
                 "server_pragmas": list(server_pragmas), "worker_env": worker_env or {},
                 "load_at_start": os.getloadavg()}
    mapping = root / "olddesk.toml"
    mapping.write_text(MAPPING)
    load_mapping(mapping)
    files = write_log(root, cases, probes, now, shard)
    # The probes' deadline falls while the cases are being handed over, long after the probes were
    # (evicted from the cache by then, they are replayed when their timers fire).
    fire = fire_after or timedelta(seconds=handover_by / 2 if handover_by else 60 + cases / 40 + hold_seconds / 2)
    write_policy(policy, fire)
    out["probe_first_response_s"] = fire.total_seconds()
    await cluster.start_server()
    try:
        store = open_case_store(cluster.settings())
        cluster.start_worker(0)
        await asyncio.sleep(3)  # the worker connects and registers
        out["worker_cache"] = worker_cache(cluster)
        out["rss_idle_mib"] = {"worker": proc_rss(cluster.workers[0]), "server": proc_rss(cluster.server)}
        runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
            filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
        client = await Client.connect(cluster.address, data_converter=pydantic_data_converter, runtime=runtime)
        settings = cluster.settings()
        imported: asyncio.Queue = asyncio.Queue()
        imports: list[dict] = []
        importing = asyncio.ensure_future(import_files(cluster, files, mapping, imported, imports, progress_file))
        try:
            out["handover"], out["hold"] = await handover_and_hold(
                cluster, client, store, imported, settings.task_queue, concurrency, step, hold_seconds, sample,
                progress_file, None if handover_by is None else run_start + handover_by)
        finally:
            importing.cancel()
            await asyncio.gather(importing, return_exceptions=True)
        out["import"] = {"files": imports, "cases": sum(i["open"] for i in imports),
                         "events": sum(i["events"] for i in imports),
                         "seconds": round(sum(i["seconds"] for i in imports), 1)}
        cases_client = CaseworkClient(client, settings.task_queue)
        ids = [case_id for _, file_ids in files for case_id in file_ids]  # the first handed over first
        out["replay_check"] = await replay_check(cases_client, store, ids[probes:], replay_checks)
        out["probes"] = await probe_check(store, ids[:probes], fire, deadline=120)
        out["end"] = {"worker_rss_mib": proc_rss(cluster.workers[0]), "server_rss_mib": proc_rss(cluster.server),
                      "server_db_mib": db_mib(root), "store_mib": round(sum(
                          p.stat().st_size for p in root.glob("events.db*")) / 2**20, 1),
                      "load": os.getloadavg()}
        emit(progress_file, {"phase": "done", **out["end"]})
        return out
    finally:
        cluster.stop()


async def import_files(cluster: Cluster, files: list[tuple[Path, list[str]]], mapping: Path,
                       imported: asyncio.Queue, stats: list[dict], progress_file: Path) -> None:
    """Each file through `casework import --no-live` (the command line, as a migration runs it), its
    case ids queued for the hand-over once it is stored; None after the last."""
    for path, ids in files:
        t = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            str(BIN / "casework"), "import", str(path), "--mapping", str(mapping), "--no-live", "--no-progress",
            "--json", env=cluster._env(cluster.root), stdout=asyncio.subprocess.PIPE,  # noqa: SLF001
            stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"casework import {path.name} exited {proc.returncode}: {stderr.decode()[-2000:]}")
        summary = json.loads(stdout)
        if summary["open"] != len(ids) or summary["refused"] or summary["not_imported"]:
            raise RuntimeError(f"casework import {path.name}: {len(ids)} open tickets, but {stdout.decode()[:2000]}")
        stats.append({"file": path.name, "open": summary["open"], "events": summary["events"],
                      "seconds": round(time.perf_counter() - t, 1)})
        emit(progress_file, {"phase": "imported", **stats[-1]})
        await imported.put(ids)
    await imported.put(None)


def emit(path: Path, line: dict) -> None:
    line = {"t": datetime.now(UTC).isoformat(timespec="seconds"), **line}
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line), file=sys.stderr, flush=True)


async def handover_and_hold(cluster: Cluster, client: Client, store, imported: asyncio.Queue, task_queue: str,
                            concurrency: int, step: int, hold_seconds: float, sample: float,
                            progress_file: Path, stop_at: float | None = None) -> tuple[dict, dict]:
    """Hand each imported file's cases to the engine as it comes, reading RSS at every `step` started;
    then wait until the worker has run the last ones' first tasks; then hold, sampling. Each point:
    cases started, seconds since the first start, RSS, CPU seconds, the server's file."""
    worker = cluster.workers[0]
    begin, handled, points, order = time.perf_counter(), 0, [], []
    totals = LiveStarts()

    def point(**extra) -> dict:
        return {"started": handled, "s": round(time.perf_counter() - begin, 1), "worker_rss_mib": proc_rss(worker),
                "server_rss_mib": proc_rss(cluster.server), "server_db_mib": db_mib(cluster.root),
                "worker_cpu_s": cpu_s(worker), "server_cpu_s": cpu_s(cluster.server), "bench_cpu_s": round(
                    sum(os.times()[:2]), 1), "load1": round(os.getloadavg()[0], 2), **extra}

    async def hand_over() -> None:
        nonlocal handled, totals, begin

        def progress(n: int) -> None:
            nonlocal handled
            handled = base + n
            if handled % step == 0:
                points.append(point())

        first = True
        while (ids := await imported.get()) is not None:
            if first:
                begin, first = time.perf_counter(), False
            base = handled
            order.extend(ids)
            done = await start_live(client, store, ids, task_queue, concurrency=concurrency, progress=progress)
            totals = LiveStarts(totals.started + done.started, totals.already + done.already)

    async def sampler(phase: str) -> None:
        while True:
            await asyncio.sleep(sample)
            emit(progress_file, {"phase": phase, **point()})

    ticker = asyncio.ensure_future(sampler("handover"))
    try:
        timeout = None if stop_at is None else max(0.0, stop_at - time.perf_counter())
        try:
            await asyncio.wait_for(hand_over(), timeout)
            stopped = False
        except TimeoutError:  # time is up: the cases started so far are held and checked
            totals, stopped = LiveStarts(started=handled), True
        starts_s = time.perf_counter() - begin
        # Started is not yet run: the worker takes each workflow's first task after its start. (Cut
        # off by time, the last `concurrency` cases taken may not have been started.)
        last = order[max(0, handled - 20):handled - concurrency * stopped]
        # The worker takes the started cases at its own pace (about 28 a second on an idle 2-core
        # machine), behind the starts: at 100,000 the backlog outlasted a fixed 10 minutes.
        settle = await first_tasks_done(client, last, timeout=max(600.0, handled / 10))
        ran_s = time.perf_counter() - begin
    finally:
        ticker.cancel()
    points.append(point(phase="first tasks done"))
    handover = {"started": totals.started, "already": totals.already, "stopped_by_time": stopped,
                "start_seconds": round(starts_s, 1), "starts_per_s": round(totals.started / starts_s, 1),
                "first_tasks_done_seconds": round(ran_s, 1), "cases_running_per_s": round(totals.started / ran_s, 1),
                "last_first_task_checked": settle, "points": points}
    emit(progress_file, {"phase": "handed over", **{k: v for k, v in handover.items() if k != "points"}})
    hold_points, held = [], time.perf_counter()
    while time.perf_counter() - held < hold_seconds:
        await asyncio.sleep(min(sample * 3, hold_seconds))
        hold_points.append(point(held_s=round(time.perf_counter() - held, 1)))
        emit(progress_file, {"phase": "hold", **hold_points[-1]})
    rss = [p["worker_rss_mib"] for p in points + hold_points]
    return handover, {"seconds": round(time.perf_counter() - held, 1), "points": hold_points,
                      "worker_rss_max_mib": max(rss) if rss else None}


async def first_tasks_done(client: Client, ids: list[str], timeout: float = 600) -> int:
    """Wait until each workflow's first task completed (its history has more than started, scheduled,
    started): the worker has taken the case up and set its timers. Returns how many were checked."""
    deadline = time.monotonic() + timeout
    for case_id in ids:
        handle = client.get_workflow_handle(workflow_id_for(case_id))
        while (await handle.describe()).history_length < 4:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not take up {case_id} within {timeout} s")
            await asyncio.sleep(1)
    return len(ids)


async def replay_check(cases: CaseworkClient, store, early: list[str], n: int) -> dict:
    """A first response on each of the first `n` cases handed over that are still in intake (only a
    "New" row): long evicted from the sticky cache, each replays and answers. Checked in the store."""
    chosen = [c for c in early[: 4 * n] if store.state(c).stage.value == "intake"][:n]
    results = []
    for case_id in chosen:
        before = store.state(case_id).version
        t = time.perf_counter()
        answer = await cases.send(case_id, Respond(command_id=f"hold-respond-{case_id}", actor=AGENT,
                                                   message="we are on it"))
        took = time.perf_counter() - t
        stored = store.state(case_id)
        results.append({"case_id": case_id, "seconds": round(took, 2), "stage": answer.stage.value,
                        "stored": stored.version > before and stored.first_response_at is not None
                        and answer.version == stored.version})
    return {"cases": len(results), "answered": sum(r["stage"] == "response" and r["stored"] for r in results),
            "seconds": spread([r["seconds"] for r in results]), "results": results}


async def probe_check(store, probe_ids: list[str], fire: timedelta, deadline: float) -> dict:
    """The probes' first-response warning and breach: stored, at their due instants (`at` against
    the clock's own due), decided how late (the event's `recorded_at` against `at`)."""
    until = time.monotonic() + deadline
    while True:
        found = {c: [e for e in store.history(c) if e.type in ("SlaClockWarned", "SlaClockBreached")
                     and e.clock == "first_response"] for c in probe_ids}
        if all(len(v) == 2 for v in found.values()) or time.monotonic() > until:
            break
        await asyncio.sleep(2)
    rows = []
    for case_id, events in found.items():
        due = store.history(case_id)[0]  # CaseOpened: its instant is the clock's start
        for e in events:
            rows.append({"case_id": case_id, "type": e.type, "at": e.at.isoformat(),
                         "decided_late_s": round((e.recorded_at - e.at).total_seconds(), 3),
                         "at_minus_opened_s": round((e.at - due.recorded_at).total_seconds(), 3)})
    return {"probes": len(probe_ids), "first_response_s": fire.total_seconds(),
            "events": len(rows), "expected": 2 * len(probe_ids), "rows": rows}
