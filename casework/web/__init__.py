"""The HTTP API: `serve(settings)` runs it alone (`casework serve`); `running(...)` runs it inside the
engine (`casework run`, unless http_enabled is false). Routes in casework/web/api.py, the app in
casework/web/app.py, docs/http-api.md for users."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import structlog
from temporalio.client import Client

from casework.config import ConfigError, Settings, reporting_env

log = structlog.get_logger("casework.web")
LOOPBACK = ("localhost",)


def _loopback(host: str) -> bool:
    try:
        return host in LOOPBACK or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(settings: Settings) -> None:
    """Refuse (ConfigError) settings the HTTP API cannot be safe or useful with, before anything starts."""
    from casework.http_auth import jwt_verifier_for
    from casework.principals import credential_for, registry_for
    from casework.web.signin_limits import SignInLimiter

    registry, credential = registry_for(settings), credential_for(settings)
    off = " (or CASEWORK_HTTP_ENABLED=false to run the engine without its HTTP API)"
    if registry is None and not _loopback(settings.http_host):
        raise ConfigError(f"the HTTP API on {settings.http_host} needs a principal registry "
                          "(CASEWORK_PRINCIPALS_FILE): without one every caller is who it says it is, which is "
                          "for development on 127.0.0.1 only" + off)
    if registry is not None and credential is None:
        raise ConfigError("the HTTP API signs the commands it sends: set CASEWORK_PRINCIPAL (a service of the "
                          "registry that may act as the roles it presents) and its secret" + off)
    jwt_verifier_for(settings)  # a JWT setting that cannot work stops it here, named
    SignInLimiter.for_settings(settings)  # and so does a sign-in rate that is not one


def api_for(settings: Settings, client: Client, *, sealer: Any = None, view: Any = None, store: Any = None,
            sign_ins: Any = None):
    """The routes' context from settings: authentication, the signing credential, the read models.
    `sign_ins`: the failed sign-in limiter to share (with the console); a new one otherwise."""
    from casework.client import CaseworkClient
    from casework.http_auth import HttpAuthenticator, jwt_verifier_for
    from casework.principals import credential_for, registry_for
    from casework.web.api import Api
    from casework.web.signin_limits import SignInLimiter
    from projections.runner import open_view

    check(settings)
    registry, credential = registry_for(settings), credential_for(settings)
    if registry is None:
        log.warning("http_open_mode", meaning="no principal registry: the HTTP API takes the actor each request "
                    "names, unauthenticated; for development only")
    auth = HttpAuthenticator(registry, jwt_verifier_for(settings)) if registry is not None else None
    if sealer is None and settings.store_encryption:
        from casework.stores import open_keyring

        sealer = open_keyring(settings)
    return Api(cases=CaseworkClient(client, settings.task_queue, credential=credential), auth=auth,
               view=view if view is not None else open_view(reporting_env(settings)), sealer=sealer,
               namespace=settings.temporal_namespace, timeout=settings.http_engine_timeout_seconds,
               page_max=settings.http_page_size_max, settings=settings, store=_store_opener(settings, store),
               sign_ins=sign_ins or SignInLimiter.for_settings(settings),
               managers=frozenset(settings.console_managers))


def _store_opener(settings: Settings, store: Any) -> Any:
    """The engine's store when it runs inside the engine; alone, the configured store, opened when first needed."""
    if store is not None:
        return lambda: store
    opened: list[Any] = []

    def open_store() -> Any:
        if not opened:
            from casework.stores import open_case_store

            opened.append(open_case_store(settings))
        return opened[0]

    return open_store


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now, so a taken port stops the start with a clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"the HTTP API cannot listen on {host}:{port} ({err.strerror}): set CASEWORK_HTTP_PORT "
                          "(or CASEWORK_HTTP_HOST), or CASEWORK_HTTP_ENABLED=false") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _server(app: Any):
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # Ours, not uvicorn's: uvicorn would re-raise a caught SIGTERM once stopped (exit by signal),
            # and inside the engine the engine's own handlers stop everything in order.
            yield

    config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False, lifespan="off")
    return Server(config)


@contextlib.asynccontextmanager
async def running(settings: Settings, client: Client, *, sealer: Any = None, view: Any = None, store: Any = None,
                  mounts: Sequence[tuple[str, Any]] = (), sock: socket.socket | None = None,
                  sign_ins: Any = None) -> AsyncIterator[str]:
    """The HTTP API served on this event loop while the block runs; yields its base URL. Port 0: any.
    `sock`: a socket bound before (`listen`), so the port was known free before the engine started."""
    from casework.web.app import build_app

    app = build_app(api_for(settings, client, sealer=sealer, view=view, store=store, sign_ins=sign_ins), mounts)
    sock = sock or bind(settings.http_host, settings.http_port)
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    server = _server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # its failure, raised here
                raise ConfigError("the HTTP API stopped while starting")
            await asyncio.sleep(0.02)
        log.info("http_api_started", url=url)
        yield url
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        sock.close()


def listen(settings: Settings) -> socket.socket:
    """Check the settings and take the port, before the engine starts anything (`casework run`)."""
    check(settings)
    return bind(settings.http_host, settings.http_port)


def serve(settings: Settings, mounts: Sequence[tuple[str, Any]] = ()) -> None:
    """`casework serve`: the HTTP API alone, against the engine's Temporal (CASEWORK_TEMPORAL_ADDRESS, or
    the embedded server of a `casework run` on this machine), until SIGINT/SIGTERM."""
    asyncio.run(_serve(settings, mounts))


async def _serve(settings: Settings, mounts: Sequence[tuple[str, Any]]) -> None:
    from casework.client import connect
    from casework.web.app import build_app

    sock = listen(settings)  # bad settings and a taken port are refused before Temporal is dialled
    embedded = not settings.temporal_address
    address = settings.temporal_address or f"localhost:{settings.embedded_port}"
    try:
        client = await connect(address, settings.temporal_namespace, settings=settings, embedded=embedded)
    except RuntimeError as err:
        sock.close()
        raise RuntimeError(f"the HTTP API cannot reach Temporal at {address} (start the engine with casework "
                           f"run, or set CASEWORK_TEMPORAL_ADDRESS): {err}") from None
    app = build_app(api_for(settings, client), mounts)
    log.info("http_api_started", url=f"http://{settings.http_host}:{sock.getsockname()[1]}", temporal=address)
    server = _server(app)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # a clean stop, exit status 0
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    await server.serve(sockets=[sock])
    log.info("http_api_stopped")
