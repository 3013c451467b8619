"""The casework worker: runs case workflows and their activities, by default on an embedded Temporal.

`python worker.py` (or `casework run`) starts the real Temporal dev server persisted under the data
directory, with its web UI, unless CASEWORK_TEMPORAL_ADDRESS points at an existing server. One engine
per data directory and port (casework/devserver.py); the reporting projection follows the event
store in a process of its own (casework/projector.py), the notification outbox on threads of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest

from activities.case_store import CaseStoreActivities
from activities.delivery import service_for
from activities.follow_up import FollowUpActivities
from activities.return_visits import ReturnVisitActivities
from activities.sla_policy import SlaPolicyActivities
from casework.config import ConfigError, Settings, load_settings, reporting_env
from casework.connection import auth_settings_given, connect_options
from casework.devserver import (
    EngineLock, EngineRefused, dev_server, dev_server_args, ensure_ports_free, require_temporal_binary,
)
from casework.logs import configure_logging, safe_url
from casework.policy import coverage_warnings, load_policy
from casework.projector import open_for_settings, projection_process
from casework import sample_principals
from casework.client import CaseworkClient
from casework.principals import Credential, credential_for, registry_for
from casework.queue_owner import ensure_queue_is_ours, store_fingerprint, worker_identity
from domain.principals import Registry
from casework.stores import make_private, open_case_store
from domain.store import CaseStore
from projections.runner import ReportProjection, open_view
from workflows.contract import SEARCH_ATTRIBUTES
from workflows.return_visits import ReturnVisitsWorkflow
from workflows.service_case import ServiceCaseWorkflow

log = structlog.get_logger("casework.worker")


def build_worker(client: Client, store: CaseStore, task_queue: str, max_activities: int = 32,
                 policy_path: str | None = None, reporting: dict[str, str] | None = None,
                 identity: str | None = None, registry: Registry | None = None,
                 credential: Credential | None = None, max_cached_workflows: int = 1000) -> Worker:
    acts = CaseStoreActivities(store, registry)
    return Worker(
        client, task_queue=task_queue, workflows=[ServiceCaseWorkflow, ReturnVisitsWorkflow],
        activities=[acts.execute_command, acts.execute_batch, acts.read_case, SlaPolicyActivities(policy_path).load_sla_terms,
                    FollowUpActivities(reporting).last_survey_at,
                    ReturnVisitActivities(client, task_queue, credential, registry).open_return_visit,
                    ReturnVisitActivities(client, task_queue, credential, registry).authorize_plan_command],
        activity_executor=ThreadPoolExecutor(max_activities), max_concurrent_activities=max_activities,
        max_cached_workflows=max_cached_workflows, identity=identity)


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
    """A client for the configured server (TLS, API key and payload encryption as set:
    casework/connection.py), or for an embedded dev server that lives (and dies) with it."""
    if settings.temporal_address:
        yield await Client.connect(settings.temporal_address, **connect_options(settings))
        return
    options = connect_options(settings, embedded=True)
    if auth_settings_given(settings):
        log.warning("connection_settings_ignored", reason="the embedded Temporal dev server serves plaintext "
                    "on 127.0.0.1; TLS and API key settings apply with CASEWORK_TEMPORAL_ADDRESS")
    temporal = require_temporal_binary()
    args = dev_server_args(temporal, namespace=settings.temporal_namespace, port=settings.embedded_port,
                           ui_port=settings.embedded_ui_port,
                           db_filename=str(settings.data_dir / "temporal.db"), search_attributes=SEARCH_ATTRIBUTES)
    server_log = settings.data_dir / "temporal.log"
    async with dev_server(args, settings.embedded_port, settings.temporal_namespace, server_log,
                          data_converter=options["data_converter"]) as (proc, client):
        log.info("embedded_temporal_started", address=f"127.0.0.1:{settings.embedded_port}",
                 ui=f"http://127.0.0.1:{settings.embedded_ui_port}", pid=proc.pid, log=str(server_log))
        yield client


async def serve(settings: Settings) -> None:
    """Run the engine until SIGINT/SIGTERM; refused (EngineRefused), before it touches anything, when
    its data directory or its embedded server's ports are taken."""
    connect_options(settings, embedded=not settings.temporal_address)  # a bad setting stops it here, named
    if not settings.temporal_address:
        require_temporal_binary()  # before anything is created: a backend without the [server] extra
    # Everything the engine writes (stores, keyring, the dev server's database, logs, locks) is its
    # user's alone: files 0600, directories 0700 (docs/security-data.md).
    os.umask(0o077)
    lock = EngineLock(settings.data_dir)
    lock.acquire(f"port {settings.embedded_port}" if not settings.temporal_address else settings.temporal_address)
    http = None
    try:
        if not settings.temporal_address:
            ensure_ports_free({"CASEWORK_EMBEDDED_PORT": settings.embedded_port,
                               "CASEWORK_EMBEDDED_UI_PORT": settings.embedded_ui_port})
        if settings.http_enabled:  # its settings checked and its port taken now, before anything starts
            from casework import web

            http = web.listen(settings)
        await _serve(settings, http)
    finally:
        if http is not None:
            http.close()
        lock.release()


async def _serve(settings: Settings, http: socket.socket | None = None) -> None:
    make_private(settings.data_dir, sqlite=settings.event_store == "sqlite")  # what earlier versions left
    store = open_case_store(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    policy = load_policy(settings.sla_policy or None)  # a bad policy file stops the engine here, named
    for gap in coverage_warnings(policy, datetime.now(UTC).date()):
        log.warning("calendar_coverage", problem=gap)
    registry, credential = registry_for(settings), credential_for(settings)  # bad ones stop it here too
    if registry is None:
        log.warning("auth_open_mode", principals_file=None, meaning=(
            "no principal registry (CASEWORK_PRINCIPALS_FILE): every caller is who it says it is; "
            "for development only"))
    else:
        log.info("auth_registry", principals_file=settings.principals_file, services=len(registry.services),
                 staff=len(registry.staff))
    async with temporal_client(settings) as client:
        await ensure_search_attributes(client, settings.temporal_namespace)
        fingerprint = store_fingerprint(settings)
        await ensure_queue_is_ours(client, settings.temporal_namespace, settings.task_queue, fingerprint)
        worker = build_worker(client, store, settings.task_queue, settings.max_concurrent_activities,
                              settings.sla_policy or None, reporting_env(settings), worker_identity(fingerprint),
                              registry, credential, settings.max_cached_workflows)
        async with worker, projection_thread(settings, store), notification_thread(settings, store), \
                http_api(settings, client, store, http) as url:
            log.info("worker_started", task_queue=settings.task_queue, event_store=settings.event_store,
                     data_dir=str(settings.data_dir), projections=settings.projections,
                     notifications=settings.notifications, http_api=url,
                     webhook=safe_url(settings.webhook_url, origin_only=True) if settings.webhook_url else None)
            await stop.wait()
            log.info("worker_stopping")


@contextlib.asynccontextmanager
async def notification_thread(settings: Settings, store: CaseStore) -> AsyncIterator[None]:
    """The notification outbox (follower and deliverer), on threads of its own (by default); it never
    touches the command path, so a dead webhook receiver cannot hold a case."""
    if not settings.notifications:
        yield
        return
    service, stop = service_for(settings, store), threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), name="notifications", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 15)


@contextlib.asynccontextmanager
async def http_api(settings: Settings, client: Client, store: CaseStore,
                   sock: socket.socket | None) -> AsyncIterator[str | None]:
    """The HTTP API (casework/web) on the engine's own event loop, on the socket `serve` bound; yields its URL."""
    if sock is None:
        yield None
        return
    from casework.web import running

    from casework.web.signin_limits import SignInLimiter

    limiter = SignInLimiter.for_settings(settings)  # one count of failed sign-ins for the API and the console
    mounts, sign_ins = console_mounts(settings, client, store, limiter)
    async with running(settings, client, sealer=store.sealer, store=store, sock=sock, mounts=mounts,
                       sign_ins=limiter) as url:
        if sign_ins:
            log.warning("console_sample_sign_ins", console=f"{url}/console", sign_ins=sign_ins, meaning=(
                "development only: no principal registry (CASEWORK_PRINCIPALS_FILE), so the console takes the "
                "published sample keys of casework/samples/principals.toml; configure a registry (or "
                "CASEWORK_CONSOLE_SAMPLE_SIGN_INS=false) for anything else"))
        elif mounts:
            log.info("console_started", console=f"{url}/console")
        yield url


def console_mounts(settings: Settings, client: Client, store: CaseStore,
                   limiter: object = None) -> tuple[list[tuple[str, object]], list[str]]:
    """The web console at /console beside the API, and the sample sign-ins it offers (none with a
    registry). In open mode it runs on the sample registry (casework/sample_principals.py), unless
    that is turned off: then it is off, and the engine logs why."""
    from casework.web.console import console_app

    if settings.principals_file:
        cases = CaseworkClient(client, settings.task_queue, credential=credential_for(settings))
        return [("/console", console_app(settings, cases=cases, store=store, sign_ins=limiter))], []
    if not sample_principals.wanted(settings):
        log.info("console_off", reason="no principal registry (CASEWORK_PRINCIPALS_FILE) and no sample sign-ins "
                 "(CASEWORK_CONSOLE_SAMPLE_SIGN_INS=false): nobody can sign in")
        return [], []
    registry, credential, console_settings = sample_principals.sample_console(settings)
    cases = CaseworkClient(client, settings.task_queue, credential=credential)
    app = console_app(console_settings, cases=cases, store=store, registry=registry, sign_ins=limiter)
    return [("/console", app)], sample_principals.described(registry)


@contextlib.asynccontextmanager
async def projection_thread(settings: Settings, store: CaseStore) -> AsyncIterator[None]:
    """The reporting projection, following the event store: in a process of its own by default
    (casework/projector.py), or on a thread of the worker (CASEWORK_PROJECTION_PROCESS=false)."""
    if not settings.projections:
        yield
        return
    if settings.projection_process:
        async with projection_process(functools.partial(open_for_settings, settings), settings.log_format,
                                      settings.log_level):
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


def main(settings: Settings | None = None) -> None:
    try:
        settings = settings or load_settings()
        configure_logging(settings.log_format, settings.log_level)
        asyncio.run(serve(settings))
    except EngineRefused as err:
        print(f"casework: the engine cannot start: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except ConfigError as err:
        print(f"casework: invalid configuration: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
