"""Following the event store into the reporting tables, and rebuilding them from the events.

The SQLite event store has no subscription, so the runner polls the notification log; the same
loop serves PostgreSQL. Exactly-once comes from the view: rows and position commit together, and a
batch commits only if the position is still the one it was read after (a compare-and-set), so two
runners, or a runner and a rebuild's swap, cannot both apply the same events. On top of that a
lease (projections/lease.py) keeps a second runner on standby rather than racing the first.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from domain.store import CaseStore, Forgotten, PrivacyAudit, is_case_event
from projections import dashboard, facts
from projections.log import reader as log_reader
from projections.lease import POSTGRES, ProjectionBusy, holding, lease_for, postgres_ddl_lock
from projections.view import Batch, PostgresReportView, ReportView, SQLiteReportView, StalePosition

log = structlog.get_logger("casework.projections")
PROJECTION_NAME = "casereports"
REBUILD_PREFIX = "rebuild_"
# Fresh tables (position 0) behind by at least this many batches are loaded in bulk (ReportProjection.bulk).
BULK_BATCHES = 10


def open_view(env: dict[str, str], prefix: str = "") -> ReportView:
    """The reporting view for an eventsourcing environment (SQLITE_DBNAME=..., or POSTGRES_*)."""
    factory = InfrastructureFactory.construct(Environment(PROJECTION_NAME, env))
    postgres = env.get("PERSISTENCE_MODULE") == POSTGRES
    cls = type("View", (PostgresReportView if postgres else SQLiteReportView,), {"prefix": prefix})
    if not postgres:
        view = factory.tracking_recorder(cls)
    else:
        with postgres_ddl_lock(env):  # two processes starting together must not race CREATE ... IF NOT EXISTS
            with factory.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
                c.execute(f'CREATE SCHEMA IF NOT EXISTS "{factory.datastore.schema}"')  # type: ignore[attr-defined]
            view = factory.tracking_recorder(cls)
    view.env = dict(env)
    view.dashboard_zone = env.get(dashboard.ZONE_KEY) or None
    return view  # type: ignore[return-value]


@dataclass
class Lag:
    events_behind: int
    seconds_behind: float
    position: int
    head: int


class ReportProjection:
    def __init__(self, store: CaseStore, view: ReportView, batch_size: int = 500, upstream: str | None = None):
        if batch_size < 1:  # a batch of none would never be short: the runner would never wait
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.store = store
        self.view = view
        self.batch_size = batch_size
        self.upstream = upstream or store.name  # the tracking row's name
        if view.sealer is None:  # what the view keeps sealed, it seals with the store's keyring
            view.sealer = store.sealer
        self.refused = 0  # batches another writer beat us to (read again, nothing written)
        self._log = log_reader(store.recorder)  # (after, limit) -> the next (id, topic, state) of the log
        self._read = facts.reader(store.mapper)  # a stored case event's state -> the fact the handlers read
        self.failed = 0  # steps that raised (logged, retried after a pause)
        self._bulk_to_end = False  # a bulk load ended without its indexes and days made (bulk)

    def position(self) -> int:
        return self.view.max_tracking_id(self.upstream) or 0  # type: ignore[attr-defined]

    def _next(self, after: int, limit: int) -> Batch:
        # The store also holds the privacy audit: a forgetting erases what read models keep of the customer.
        read = self._read
        return [(read(state) if is_case_event(topic) else _forgotten(self.store, position), position)
                for position, topic, state in self._log(after, limit)]

    def step(self) -> int:
        """Apply the next batch; returns how many events it applied (0: caught up).

        A batch another writer moved the position under is refused by the view, untouched; that is
        a lost race, not a fault: read again from the new position.
        """
        if self._bulk_to_end:  # a bulk load whose end failed: its indexes and days first
            self._end_bulk()
        while True:
            after = self.position()
            batch = self._next(after, self.batch_size)
            if not batch:
                return 0
            try:
                self.view.apply_batch(batch, self.upstream, after=after)
            except StalePosition as lost:
                self.refused += 1
                log.debug("projection_batch_refused", upstream=self.upstream, read_after=after,
                          position=lost.position)
                continue
            return len(batch)

    def catch_up(self, until: int | None = None, stop: threading.Event | None = None) -> int:
        """Apply batches until caught up with the log (or, given `until`, at least to that position:
        a bound, so catching up ends while events keep being appended; given `stop`, until it is set).
        Fresh tables are loaded in bulk (`bulk`)."""
        total = 0
        with self.bulk():
            while ((stop is None or not stop.is_set()) and (until is None or self.position() < until)
                   and (applied := self.step())):
                total += applied
        return total

    def fresh(self) -> bool:
        """Tables that hold nothing yet, with a backlog of many batches to apply."""
        return self.position() == 0 and self.head() >= BULK_BATCHES * self.batch_size

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """For fresh tables, the body's batches are a bulk load (ReportView.begin_bulk: indexes and
        the dashboard's days made once, when it ends, however it ends: caught up, stopped, an error).
        Rows, position and exactly-once are as ever; reports read meanwhile are slower, not wrong. An
        end that fails (a locked database) is made again before the next batch (step). What a process
        killed meanwhile left undone, the next runner makes as it starts or takes over (`run`:
        ReportView.settle), and any opening of the view makes the indexes (create_report_tables)."""
        if not self.fresh():
            yield
            return
        log.info("projection_bulk_load", upstream=self.upstream, head=self.head())
        try:
            self.view.begin_bulk()
            yield
        finally:
            self._bulk_to_end = True
            self._end_bulk()

    def _end_bulk(self) -> None:
        self.view.end_bulk(self.upstream)
        self._bulk_to_end = False
        log.info("projection_bulk_load_done", upstream=self.upstream, position=self.position())

    def head(self) -> int:
        return self.store.recorder.max_notification_id() or 0

    def run(self, stop: threading.Event, idle_seconds: float = 0.2, exclusive: bool = True,
            standby: bool = True, standby_seconds: float = 1.0, lease_check_seconds: float = 5.0) -> None:
        """Follow the event store until `stop` is set: a batch, then, once caught up (a batch short of
        `batch_size`), a wait of `idle_seconds`: the tables lag the store by about that much at most.

        `exclusive`: hold the projection's lease while applying; while another runner holds it, wait
        on standby (log `projection_standby` once, naming the holder) and take over when it lets go;
        with `standby=False`, raise ProjectionBusy instead. Without the lease (exclusive=False) the
        compare-and-set alone keeps it exactly once; the runners then just race for batches.
        """
        lease = lease_for(self.view.env, "run") if exclusive else None
        held, next_check, announced, starting = lease is None, 0.0, False, True
        log.info("projection_started", upstream=self.upstream, position=self.position(), exclusive=exclusive)
        try:
            while not stop.is_set():
                try:
                    if lease is not None and not held:
                        if not lease.try_acquire():
                            if not standby:
                                raise ProjectionBusy(f"another runner holds the reporting projection "
                                                     f"({lease.where}: {lease.holder()})")
                            if not announced:
                                log.warning("projection_standby", lease=lease.where, holder=lease.holder(),
                                            message="another runner holds the reporting projection; "
                                                    "waiting to take over when it stops")
                                announced = True
                            stop.wait(standby_seconds)
                            continue
                        held, announced, starting = True, False, True
                        next_check = time.monotonic() + lease_check_seconds
                        log.info("projection_lease_acquired", lease=lease.where, position=self.position())
                    if lease is not None and time.monotonic() >= next_check:
                        next_check = time.monotonic() + lease_check_seconds
                        if not lease.held():  # the compare-and-set still guards what we write
                            lease.release()
                            held = False
                            log.warning("projection_lease_lost", lease=lease.where)
                            continue
                    if starting:  # starting, or taking over: fresh tables and a backlog are loaded in bulk
                        # first; tables a runner killed in its bulk load left are made whole first.
                        self.view.settle(self.upstream)
                        starting = False
                        if self.fresh():
                            self.catch_up(until=self.head(), stop=stop)
                            continue
                    # A partial batch was all there was: wait as when idle, so that under a stream of
                    # commands the next batch gathers what came meanwhile, instead of a transaction
                    # (position, memories, days, commit) per event or two competing with the worker.
                    if self.step() < self.batch_size:
                        stop.wait(idle_seconds)
                except ProjectionBusy:
                    raise
                except Exception:  # noqa: BLE001 - a bad moment (locked DB) must not end the runner
                    self.failed += 1
                    log.exception("projection_step_failed")
                    stop.wait(1.0)
        finally:
            if lease is not None:
                lease.release()

    def lag(self) -> Lag:
        position, head = self.position(), self.head()
        behind = self._next(position, 1)
        # The next event's instant: a case event's recording, a forgetting's own instant.
        when = getattr(behind[0][0], "recorded_at", None) or getattr(behind[0][0], "at", None) if behind else None
        seconds = (datetime.now(UTC) - when).total_seconds() if when is not None else 0.0
        return Lag(events_behind=head - position, seconds_behind=max(seconds, 0.0), position=position, head=head)


def set_aside_startup_heap() -> None:
    """Move what the process holds so far (its modules, settings, open stores) out of the collector's
    reach, for a process that then projects for long: a catch-up allocates and frees objects by the
    million, and each full collection would walk the ~100k objects of the imports again (5-9 % of a
    catch-up's time, measured). What is set aside lives as long as the process anyway."""
    gc.collect()
    gc.freeze()


def _forgotten(store: CaseStore, position: int) -> Forgotten | None:
    [notification] = store.recorder.select_notifications(position, 1, inclusive_of_start=True)
    entry = store.mapper.to_domain_event(notification)
    if not isinstance(entry, PrivacyAudit.CustomerForgotten):
        return None
    return Forgotten.model_validate({k: getattr(entry, k) for k in Forgotten.model_fields})


def rebuild(store: CaseStore, env: dict[str, str], batch_size: int = 2000) -> int:
    """Build the reporting tables afresh from every event, beside the live ones, then swap them in.

    Live runners keep applying meanwhile. The swap takes the last events into the rebuilt tables in
    its own transaction, under the live position's write lock, so that after it the live tables and
    position are exactly the rebuild's; a live batch caught in between is refused and read again.
    One rebuild at a time (a second waits for the first). Returns the events applied.
    """
    with holding(lease_for(env, "rebuild"), on_wait=lambda lease: log.warning(
            "projection_rebuild_waiting", lease=lease.where, holder=lease.holder(),
            message="another rebuild of the reporting tables is running; waiting for it to finish")):
        fresh = open_view(env, prefix=REBUILD_PREFIX)
        name = f"{store.name}:rebuild"
        with (postgres_ddl_lock(env) if env.get("PERSISTENCE_MODULE") == POSTGRES else _nothing()):
            fresh.drop_report_tables(name)
            fresh.create_report_tables()
        projection = ReportProjection(store, fresh, batch_size, upstream=name)
        applied = 0
        for _ in range(5):  # chase the head while it moves; what is left goes into the swap
            applied += projection.catch_up(until=projection.head())
            if projection.head() - projection.position() <= batch_size:
                break
        late, position = fresh.swap_in(name, store.name, projection._next, projection.head, batch_size)
    log.info("projection_rebuilt", events=applied + late, applied_in_swap=late, position=position)
    return applied + late


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def wait_until_caught_up(projection: ReportProjection, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while projection.lag().events_behind > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"projection still {projection.lag().events_behind} events behind")
        time.sleep(0.05)
