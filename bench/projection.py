"""The projection and report benchmarks, on SQLite and PostgreSQL (called by bench.run).

Projection catch-up is measured against a baseline taken in the same run, on the same database:
the same events' stored payloads (notification id, topic and the stored state bytes, as the event
store holds them) inserted as rows of a plain table with the same driver, committing as often as
the projection does (one transaction per `batch_size` rows). The baseline reads nothing (the
payloads are fetched before its clock starts); the projection's time includes reading the events from the store, decoding them, evolving the cases
and writing every reporting table and its position. Each round uses fresh tables; figures are the
medians of the rounds, and the ratio is of the medians (the per-round ratios are listed too).
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.console_pages import CONSOLE_ZONE, console_pages
from bench.synthetic import write_cases, write_read_models
from casework.history import write_history
from casework.config import sqlite_env
from domain.store import CaseStore
from projections import reports
from projections import dashboard
from projections.runner import ReportProjection, open_view, set_aside_startup_heap
from projections.view import ReportView

POSTGRES = "eventsourcing.postgres"


def postgres_env(server: dict[str, str], dbname: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": POSTGRES, "POSTGRES_DBNAME": dbname, "POSTGRES_HOST": server["host"],
            "POSTGRES_PORT": server["port"], "POSTGRES_USER": server["user"],
            "POSTGRES_PASSWORD": server["password"]}


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[dict[str, str], Callable[[str], None]]]:
    """A PostgreSQL server to benchmark on: a throwaway cluster (tests/pg.py: the real server, fsync
    off), and a function creating a database on it."""
    from tests.pg import create_database, throwaway_cluster

    with throwaway_cluster() as server:
        yield server, lambda name: create_database(server, name)


def _raw_inserts(view: ReportView, rows: list[tuple[int, str, bytes]], table: str, per_transaction: int) -> float:
    """Seconds to insert the payload rows into a plain table of the view's database, `per_transaction`
    rows a transaction."""
    name = view.table(table)
    with view.datastore.transaction(commit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")
        blob = "BYTEA" if view.placeholder == "%s" else "BLOB"
        c.execute(f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, topic TEXT NOT NULL, state {blob} NOT NULL)")
    statement = view.sql(f"INSERT INTO {name} (id, topic, state) VALUES (?, ?, ?)")
    start = time.perf_counter()
    for i in range(0, len(rows), per_transaction):
        with view.datastore.transaction(commit=True) as c:
            c.executemany(statement, rows[i:i + per_transaction])
    return time.perf_counter() - start


def projection_catch_up(store: CaseStore, new_env: Callable[[int], dict[str, str]], rounds: int,
                        batch_size: int = 1000) -> dict:
    """Catch-up of fresh reporting tables from the store, `rounds` times, each beside its baseline."""
    head = store.recorder.max_notification_id() or 0
    rows = [(n.id, n.topic, bytes(n.state)) for n in store.recorder.select_notifications(0, head, inclusive_of_start=False)]
    applied_s, raw_s, ratios, applied = [], [], [], 0
    load = [round(os.getloadavg()[0], 2)]  # a shared machine: the load the figures were taken under
    for r in range(rounds):
        view = open_view(new_env(r))
        # What the process holds set aside from the collector before the clock starts, as the
        # projection child and `casework projections catch-up/rebuild` do after starting up
        # (projections.runner.set_aside_startup_heap): here that is also the synthetic store the
        # benchmark wrote, whose first full collections would otherwise be timed in round one.
        set_aside_startup_heap()
        start = time.perf_counter()
        applied = ReportProjection(store, view, batch_size=batch_size).catch_up()
        applied_s.append(applied / (time.perf_counter() - start))
        # Like for like: the baseline commits as often as the projection does.
        raw_s.append(len(rows) / _raw_inserts(view, rows, "bench_raw_payloads", batch_size))
        ratios.append(applied_s[-1] / raw_s[-1])
    gc.unfreeze()
    projection, raw = statistics.median(applied_s), statistics.median(raw_s)
    return {"events": applied, "rounds": rounds, "batch_size": batch_size, "events_per_s": round(projection),
            "raw_inserts_per_s": round(raw), "raw_rows_per_transaction": batch_size,
            "startup_heap_set_aside": True, "ratio_to_raw_inserts": round(projection / raw, 4),
            "round_ratios": [round(x, 4) for x in ratios],
            "load_average_1m": {"before": load[0], "after": round(os.getloadavg()[0], 2)}}


def report_queries(view: ReportView, store: CaseStore, tmp: Path, events: int, rounds: int, analyze: bool) -> dict:
    """Every report, and every console page (bench.console_pages), over `events` events' worth of
    read models; `store`: a small real history for the pages that read the event store."""
    sizes = write_read_models(view, target_events=events)
    # The dashboard's days in the console's zone (bench.console_pages), as the projection keeps them.
    dashboard.keep(view, CONSOLE_ZONE)
    if analyze:  # PostgreSQL's autovacuum would, soon after a bulk load; done now so the plans are the usual ones
        with view.datastore.transaction(commit=True) as c:
            c.execute("ANALYZE")
    case_ids = write_history(store, cases=20, seed=3)
    timings, fastest = {}, {}
    load = [round(os.getloadavg()[0], 2)]  # a shared machine: the load the timings were taken under
    every: dict[str, Callable[[], Any]] = {name: (lambda fn=fn: fn(view)) for name, fn in reports.REPORTS.items()}
    # What a supervisor reads: the first page, the most urgent first, and how many there are; the
    # whole list (the CLI's at-risk without --limit: 10,000 clocks in this data) beside it.
    every["at_risk"] = lambda: reports.at_risk_page(view)
    every["at_risk_whole_list"] = lambda: reports.at_risk(view)
    for name, fn in every.items():
        fn()  # untimed: the first call warms the database's page cache, as a report in use finds it
        runs = []
        for _ in range(rounds):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        timings[name] = round(statistics.median(runs) * 1000, 1)
        fastest[name] = round(min(runs) * 1000, 1)
    load.append(round(os.getloadavg()[0], 2))
    pages, fastest_pages = console_pages(view, store, case_ids[0], rounds, tmp)
    load.append(round(os.getloadavg()[0], 2))
    return {"read_model_rows": sizes, "events_equivalent": events, "rounds": rounds, "median_ms": timings,
            "min_ms": fastest, "console_median_ms": pages, "console_min_ms": fastest_pages,
            "load_average_1m": {"before": load[0], "after_reports": load[1], "after_pages": load[2]},
            "slowest": max({**timings, **pages}.items(), key=lambda kv: kv[1])[0]}


def run(tmp: Path, backends: list[str], projection_events: int, report_events: int, rounds: int,
        parts: list[str], projection_batches: tuple[int, ...] = (1000,)) -> dict:
    """The projection and report figures per backend."""
    out: dict = {}
    for backend in backends:
        with (postgres_server() if backend == "postgres" else contextlib.nullcontext((None, None))) as (server, create):
            def env_for(name: str) -> dict[str, str]:
                if backend == "sqlite":
                    return sqlite_env(tmp / f"{backend}-{name}.db")
                dbname = f"{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
                create(dbname)
                return {**postgres_env(server, dbname), "POSTGRES_SCHEMA": "reporting"}

            figures: dict = {}
            if "projection" in parts:
                store = CaseStore(env=env_for("events") if backend == "sqlite" else
                                  {k: v for k, v in env_for("events").items() if k != "POSTGRES_SCHEMA"})
                write_cases(store, target_events=projection_events)
                # The reporting environment as casework's own (config.reporting_env): the dashboard's
                # days kept in the console's zone.
                for size in projection_batches:  # the first size's figures under the usual key
                    key = "projection_catch_up" + ("" if size == projection_batches[0] else f"_batch_{size}")
                    figures[key] = projection_catch_up(
                        store, lambda r: {**env_for(f"reporting-{size}-{r}"), dashboard.ZONE_KEY: CONSOLE_ZONE},
                        rounds, batch_size=size)
            if "reports" in parts:
                store = CaseStore(env=env_for("page-events") if backend == "sqlite" else
                                  {k: v for k, v in env_for("page-events").items() if k != "POSTGRES_SCHEMA"})
                figures["report_queries"] = report_queries(open_view(env_for("big-reporting")), store, tmp,
                                                           report_events, rounds, analyze=backend == "postgres")
            out[backend] = figures
    return out
