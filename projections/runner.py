"""Following the event store into the reporting tables, and rebuilding them from the events.

The SQLite event store has no subscription, so the runner polls the notification log; the same
loop serves PostgreSQL. Exactly-once comes from the view: rows and position commit together.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from domain.events import EVENT_ADAPTER, Event
from domain.store import CaseStore
from projections.view import PostgresReportView, ReportView, SQLiteReportView

log = structlog.get_logger("casework.projections")
PROJECTION_NAME = "casereports"
REBUILD_PREFIX = "rebuild_"


def open_view(env: dict[str, str], prefix: str = "") -> ReportView:
    """The reporting view for an eventsourcing environment (SQLITE_DBNAME=..., or POSTGRES_*)."""
    factory = InfrastructureFactory.construct(Environment(PROJECTION_NAME, env))
    postgres = env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres"
    cls = type("View", (PostgresReportView if postgres else SQLiteReportView,), {"prefix": prefix})
    if postgres:
        with factory.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            c.execute(f'CREATE SCHEMA IF NOT EXISTS "{factory.datastore.schema}"')  # type: ignore[attr-defined]
    return factory.tracking_recorder(cls)  # type: ignore[return-value]


@dataclass
class Lag:
    events_behind: int
    seconds_behind: float
    position: int
    head: int


class ReportProjection:
    def __init__(self, store: CaseStore, view: ReportView, batch_size: int = 500, upstream: str | None = None):
        self.store = store
        self.view = view
        self.batch_size = batch_size
        self.upstream = upstream or store.name  # the tracking row's name

    def position(self) -> int:
        return self.view.max_tracking_id(self.upstream) or 0  # type: ignore[attr-defined]

    def _next(self, after: int, limit: int) -> list[tuple[Event, int]]:
        notifications = self.store.recorder.select_notifications(after, limit, inclusive_of_start=False)
        return [(EVENT_ADAPTER.validate_python(self.store.mapper.to_domain_event(n).fact), n.id)
                for n in notifications]

    def step(self) -> int:
        """Apply the next batch; returns how many events it applied."""
        batch = self._next(self.position(), self.batch_size)
        if batch:
            self.view.apply_batch(batch, self.upstream)
        return len(batch)

    def catch_up(self) -> int:
        total = 0
        while applied := self.step():
            total += applied
        return total

    def run(self, stop: threading.Event, idle_seconds: float = 0.2) -> None:
        log.info("projection_started", upstream=self.upstream, position=self.position())
        while not stop.is_set():
            try:
                if not self.step():
                    stop.wait(idle_seconds)
            except Exception:  # noqa: BLE001 - a bad moment (locked DB) must not end the runner
                log.exception("projection_step_failed")
                stop.wait(1.0)

    def lag(self) -> Lag:
        position, head = self.position(), self.store.recorder.max_notification_id() or 0
        behind = self._next(position, 1)
        seconds = (datetime.now(UTC) - behind[0][0].recorded_at).total_seconds() if behind else 0.0
        return Lag(events_behind=head - position, seconds_behind=max(seconds, 0.0), position=position, head=head)


def rebuild(store: CaseStore, env: dict[str, str], batch_size: int = 2000) -> int:
    """Build the reporting tables afresh from every event, beside the live ones, then swap them in."""
    fresh = open_view(env, prefix=REBUILD_PREFIX)
    name = f"{store.name}:rebuild"
    fresh.drop_report_tables(name)
    fresh.create_report_tables()
    applied = ReportProjection(store, fresh, batch_size, upstream=name).catch_up()
    fresh.swap_in(name, store.name)
    log.info("projection_rebuilt", events=applied)
    return applied


def wait_until_caught_up(projection: ReportProjection, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while projection.lag().events_behind > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"projection still {projection.lag().events_behind} events behind")
        time.sleep(0.05)
