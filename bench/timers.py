"""Timers at scale: many open cases whose deadlines fall in the same minute, and many cases held
waiting on timers, against a separate `casework run` worker process (its RSS read from /proc).

How every deadline falls in the same minute however long the openings take: the bench's SLA policy
is a 24x7 calendar with a *closure* until an instant T0 chosen after timing a few openings, so every
case opened before T0 starts its first-response clock at T0: its warning (share 0.5) is due at T0 +
27 s and its breach at T0 + 54 s, for every case alike. The planned instants are the bench's own
arithmetic, checked against each stored event's `at`.

Lateness of a warning or breach, two ways, both against the event's due instant `at` (the planned one
for every case opened before T0, counted as `at_the_planned_instant`):
- *decided*: the event's `recorded_at`, which is `workflow.now()` of the workflow task that woke on
  the timer (the server's stamp when the worker took the task up);
- *stored*: when the bench first saw the event in the store, polling it every `POLL` seconds (so up
  to that much late on top, and it includes the local activity's SQLite commit).

The hold phase goes on opening cases (deadlines a day away) up to `hold_cases`, reading the worker's
RSS after every step of 2,500, and stops when its time is up: it reports the points it reached only.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

from bench.fault import Cluster, Config
from bench.stats import percentile
from bench.lifecycle import AGENT
from casework.client import CaseworkClient
from casework.policy import load_policy
from casework.stores import open_case_store
from domain.commands import OpenCase

FIRST_RESPONSE = timedelta(seconds=54)  # 0.015 h: warning at 27 s, breach at 54 s, one minute
WARN_SHARE = 0.5
POLL = 0.25  # seconds between the bench's reads of the store
KINDS = ("SlaClockWarned", "SlaClockBreached")


def write_policy(path: Path, t0: datetime, first_response: timedelta = FIRST_RESPONSE) -> None:
    """The bench's policy: closed until `t0`, then round the clock; only first response is short."""
    start = (t0 - timedelta(days=30)).isoformat()
    path.write_text(f"""# bench/timers.py: every case opened before the closure ends has the same deadlines
version = "bench-timers-{t0:%Y%m%dT%H%M%S}"
warn_at = [{WARN_SHARE}]

[calendars.desk]
timezone = "UTC"
always_open = true
closures = [{{ start = {start}, end = {t0.isoformat()}, note = "clocks start together" }}]

[[targets]]
first_response_hours = {first_response.total_seconds() / 3600}
next_response_hours = 100.0
resolution_hours = 200.0
calendar = "desk"
source = "bench: every first response due in the same minute"

[[ladder]]
name = "agent"

[[ladder]]
name = "team_lead"
owner = "team-lead-on-duty"
""")
    load_policy(path)  # a policy the engine would refuse fails here, named


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50": round(percentile(values, 50), 3), "p99": round(percentile(values, 99), 3),
            "max": round(max(values), 3), "min": round(min(values), 3)}


async def run(root: Path, timer_cases: int, hold_cases: int = 0, hold_seconds: float = 0,
              concurrency: int = 40, herd_timeout: float = 3600, first_response: timedelta = FIRST_RESPONSE,
              lead: float = 20, worker_env: dict[str, str] | None = None) -> dict:
    """The lateness run over `timer_cases` cases, then the hold phase up to `hold_cases` (0: none);
    `worker_env`: CASEWORK_* settings of the worker (casework/config.py), e.g. its workflow cache.
    T0 is `lead` seconds after the openings should end (at the calibrated rate, with as much again to spare: a shared machine slows down)."""
    cluster = Cluster(root, Config(workers=1, log_level="warning"), None)
    policy = root / "timer_policy.toml"
    write_policy(policy, datetime.now(UTC) + timedelta(days=1))
    cluster.base["CASEWORK_SLA_POLICY"] = str(policy)
    cluster.base.update(worker_env or {})
    await cluster.start_server()
    cluster.start_worker(0)
    try:
        return await _run(cluster, policy, timer_cases, hold_cases, hold_seconds, concurrency, herd_timeout,
                          first_response, lead)
    finally:
        cluster.stop()


async def _run(cluster: Cluster, policy: Path, timer_cases: int, hold_cases: int, hold_seconds: float,
               concurrency: int, herd_timeout: float, first_response: timedelta, lead: float) -> dict:
    runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))))
    client = CaseworkClient(await Client.connect(cluster.address, data_converter=pydantic_data_converter,
                                                 runtime=runtime))
    worker = cluster.workers[0]
    assert worker is not None
    await asyncio.sleep(3)  # the worker connects and registers
    out: dict = {"worker_cache": worker_cache(cluster), "rss_idle_mib": round(rss_mib(worker.pid), 1)}
    opened = 0

    async def open_cases(n: int, tag: str) -> list[str]:
        nonlocal opened
        sem, ids = asyncio.Semaphore(concurrency), []

        async def one(i: int) -> None:
            async with sem:
                state = await client.open_case(OpenCase(
                    command_id=str(uuid.uuid4()), actor=AGENT, customer={"id": f"{tag}{i}", "name": "T"},
                    channel="web", category="enquiry", subject="waiting on timers",
                    source={"system": "bench-timers", "external_id": f"{tag}-{i}"}))
                ids.append(state.case_id)
        await asyncio.gather(*(one(opened + i) for i in range(n)))
        opened += n
        return ids

    if timer_cases:
        # Time some openings (deadlines a day away), then choose T0 so that the rest open before it.
        calibration = max(2, min(200, timer_cases // 20))
        t = time.perf_counter()
        await open_cases(calibration, "cal")
        rate = calibration / (time.perf_counter() - t)
        t0 = (datetime.now(UTC) + timedelta(seconds=timer_cases / rate * 2 + lead)).replace(microsecond=0)
        write_policy(policy, t0, first_response)
        out["calibration"] = {"cases": calibration, "opened_per_s": round(rate, 1), "t0": t0.isoformat()}
        out["lateness"] = await herd(cluster, open_cases, timer_cases, t0, first_response, herd_timeout)
        out["lateness"]["rss_mib"] = {k: round(v, 1) for k, v in out["lateness"]["rss_mib"].items()}
        write_policy(policy, datetime.now(UTC) + timedelta(days=1))
    if hold_cases > opened:
        out["hold"] = await hold(worker.pid, open_cases, lambda: opened, hold_cases, hold_seconds)
    return out


async def herd(cluster: Cluster, open_cases, n: int, t0: datetime, first_response: timedelta,
               timeout: float) -> dict:
    worker = cluster.workers[0]
    assert worker is not None
    store = open_case_store(cluster.settings())
    after = store.recorder.max_notification_id() or 0
    start = time.perf_counter()
    ids = set(await open_cases(n, "t"))
    opened_at, open_seconds = datetime.now(UTC), time.perf_counter() - start
    warn_due, breach_due = t0 + first_response * WARN_SHARE, t0 + first_response
    rss = {"after_opening": rss_mib(worker.pid), "peak_during_timers": 0.0}
    seen: dict[tuple[str, str], dict] = {}
    deadline = breach_due + timedelta(seconds=timeout)
    while len(seen) < 2 * n and datetime.now(UTC) < deadline:
        rss["peak_during_timers"] = max(rss["peak_during_timers"], rss_mib(worker.pid))
        while notes := store.recorder.select_notifications(after, 5000, inclusive_of_start=False):
            now = datetime.now(UTC)
            for note in notes:
                after = note.id
                if note.topic.rsplit(".", 1)[-1] in KINDS:
                    fact = store.mapper.fact_of(note)  # type: ignore[attr-defined]
                    if fact["case_id"] in ids and fact.get("clock") == "first_response":
                        seen[(fact["case_id"], fact["type"])] = {**fact, "seen": now}
        await asyncio.sleep(POLL)
    rss["after_timers"] = rss_mib(worker.pid)
    result: dict = {"cases": n, "opened_per_s": round(n / open_seconds, 1),
                    "opened_before_t0": opened_at <= t0, "t0": t0.isoformat(), "rss_mib": rss}
    for kind, due in (("SlaClockWarned", warn_due), ("SlaClockBreached", breach_due)):
        facts = [f for (_, k), f in seen.items() if k == kind]
        at_planned = sum(abs(datetime.fromisoformat(f["at"]) - due) < timedelta(milliseconds=1) for f in facts)
        # Against each event's own due instant (`at`): the planned one, unless its case opened after T0.
        decided = [(datetime.fromisoformat(f["recorded_at"]) - datetime.fromisoformat(f["at"])).total_seconds()
                   for f in facts]
        stored = [(f["seen"] - datetime.fromisoformat(f["at"])).total_seconds() for f in facts]
        result[kind] = {"events": len(facts), "missing": n - len(facts), "at_the_planned_instant": at_planned,
                        "due": due.isoformat(), "decided_lateness_s": spread(decided),
                        "stored_lateness_s": spread(stored)}
    return result


async def hold(pid: int, open_cases, opened, target: int, seconds: float, step: int = 2500) -> dict:
    """Open cases up to `target`, `step` at a time, the worker's RSS after each step, until time is up."""
    start, first, points = time.perf_counter(), opened(), []
    while opened() < target and time.perf_counter() - start < seconds:
        await open_cases(min(step, target - opened()), "h")
        await asyncio.sleep(5)  # the last tasks settle
        points.append({"open_cases": opened(), "rss_mib": round(rss_mib(pid), 1),
                       "minutes": round((time.perf_counter() - start) / 60, 1)})
    rss = [p["rss_mib"] for p in points]
    return {"target": target, "reached": opened() >= target, "open_cases": opened(), "points": points,
            "opened_per_s": round((opened() - first) / (time.perf_counter() - start), 1),
            "rss_max_mib": max(rss) if rss else None}


def worker_cache(cluster: Cluster) -> dict:
    settings = cluster.settings()
    from domain.store import CaseStore
    return {"max_cached_workflows": settings.max_cached_workflows,
            "store_aggregate_cache": int(CaseStore.env["AGGREGATE_CACHE_MAXSIZE"]),
            "max_concurrent_activities": settings.max_concurrent_activities}
