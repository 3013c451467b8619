"""The ASGI app: the HTTP API's routes, its problem details, and whatever else mounts beside them
(the web console mounts its own Starlette app at /console)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.types import ASGIApp

from casework.web import problems
from casework.web.api import Api, build_router
from casework.web.limits import BodyLimit

TITLE = "casework HTTP API"
VERSION = "1"
DESCRIPTION = ("The Temporal contract (docs/contract.md) as REST: open cases, send lifecycle commands with an "
               "`Idempotency-Key`, read state, timeline and clocks, list cases from the read models. Errors are "
               "RFC 9457 problem details with a stable `code`. See docs/http-api.md.")


def build_app(api: Api | None, mounts: Sequence[tuple[str, ASGIApp]] = ()) -> FastAPI:
    """The app; `api` None builds it for its OpenAPI document only. `mounts`: (path, ASGI app) pairs."""
    app = FastAPI(title=TITLE, version=VERSION, description=DESCRIPTION, docs_url="/docs", redoc_url=None,
                  openapi_url="/openapi.json")
    app.state.api = api
    app.add_middleware(BodyLimit)
    problems.install(app)
    app.include_router(build_router())
    for path, sub in mounts:
        app.mount(path, sub)
    generate = app.openapi

    def openapi() -> dict:
        # Errors are documented under the media type they are sent with, not FastAPI's application/json.
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    for answer in operation.get("responses", {}).values():
                        content = answer.get("content", {})
                        if problems.MEDIA_TYPE in content and "application/json" in content:
                            content[problems.MEDIA_TYPE] = content.pop("application/json")
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
