"""Errors as RFC 9457 problem details (`application/problem+json`), each with its stable `code`.

The codes are the engine's refusal codes (docs/contract.md) plus the HTTP API's own (unauthenticated,
no_worker, engine_timeout, bad_cursor...). `type` is `urn:casework:problem:<code>`: stable, and the same
code a Python client or the CLI reports.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.refusal import CommandRefused

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:casework:problem:"

# A refusal's status: who you are (403), what you sent (422), what the case is now (409, the default).
FORBIDDEN = frozenset({"actor_mismatch", "role_not_granted", "not_staff", "role_not_allowed", "not_on_roster",
                       "not_your_case", "unauthenticated", "forbidden", "no_role"})
STATUS = {"unknown_case": 404, "command_id_reused": 409, "malformed": 422, "actor_required": 422,
          "invalid": 422, "continuing_as_new": 503, **{code: 403 for code in FORBIDDEN}}


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is the stable machine-readable reason."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str
    errors: list[dict[str, Any]] | None = None  # each invalid field, for `malformed`


# pydantic's str(ValidationError): "N validation errors for X", then per error its location, then an
# indented message with "[type=..., input_value=..., input_type=...]" and a "For further information
# visit https://errors.pydantic.dev/..." line. Whatever text reaches a problem passes through here.
_PYDANTIC_LINK = re.compile(r"\s*For further information visit https://errors\.pydantic\.dev/\S*")
_PYDANTIC_CONTEXT = re.compile(r" \[type=[^\]\n]*\]")


def for_people(text: str) -> str:
    """A message without pydantic's developer details (its documentation links, input dumps), on one line."""
    text = _PYDANTIC_CONTEXT.sub("", _PYDANTIC_LINK.sub("", text))
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


class ProblemError(Exception):
    def __init__(self, code: str, status: int, detail: str, headers: dict[str, str] | None = None,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.code, self.status, self.detail, self.headers, self.errors = code, status, detail, headers, errors

    @classmethod
    def refused(cls, err: CommandRefused) -> ProblemError:
        headers = {"Retry-After": "1"} if err.code == "continuing_as_new" else None
        return cls(err.code, STATUS.get(err.code, 409), err.message, headers)

    @classmethod
    def invalid(cls, err: ValidationError | RequestValidationError, where: str = "body") -> ProblemError:
        found = list(err.errors())
        # A body that is not JSON: FastAPI puts the character's position where a field's name goes.
        broken = next((e for e in found if e.get("type") == "json_invalid"), None)
        if broken is not None:
            position = broken["loc"][-1] if broken["loc"] else "?"
            reason = (broken.get("ctx") or {}).get("error", "")
            return cls("malformed", 422, f"the body is not valid JSON{': ' + reason if reason else ''} "
                       f"(at character {position})")
        # `msg` only: str(err) would add the input and a link to pydantic's documentation.
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body") or where, "message": e["msg"]}
                  for e in found]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return cls("malformed", 422, f"the request does not match the command's schema: {detail}", errors=errors)


def response(problem: ProblemError, request: Request) -> JSONResponse:
    body = Problem(type=TYPE_PREFIX + problem.code, title=problem.code.replace("_", " ").capitalize(),
                   status=problem.status, detail=for_people(problem.detail), instance=request.url.path, code=problem.code,
                   errors=problem.errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=problem.status, headers=problem.headers,
                        media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    """Every error the app answers is a problem: its own, validation, unknown routes, and the unforeseen."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, err: ProblemError) -> JSONResponse:
        return response(err, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return response(ProblemError.invalid(err), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return response(ProblemError(code, err.status_code, str(err.detail), err.headers), request)

    @app.exception_handler(Exception)
    async def _unforeseen(request: Request, err: Exception) -> JSONResponse:
        # Logged with its traceback by the server; the caller gets no internals.
        import structlog

        structlog.get_logger("casework.web").exception("http_request_failed", path=request.url.path)
        return response(ProblemError("internal_error", 500, "the request failed inside the engine's HTTP API; "
                                     "the failure is logged"), request)


# For the OpenAPI document: every operation may answer these.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": text, "content": {MEDIA_TYPE: {}}}
    for status, text in {401: "no credential, or one that does not verify (`unauthenticated`)",
                         403: "the credential may not do this (`actor_mismatch`, `role_not_allowed`...)",
                         404: "no such case (`unknown_case`)",
                         409: "refused by the case's rules (`not_allowed_in_stage`, `case_closed`, "
                              "`command_id_reused`...)",
                         422: "the request does not match the schema (`malformed`, `actor_required`)",
                         429: "too many failed sign-ins from this address or for this principal "
                              "(`too_many_failed_sign_ins`); `Retry-After` says when to try again",
                         503: "no worker polls the task queue (`no_worker`), or Temporal is unreachable",
                         504: "a worker polls, but the engine did not answer in time (`engine_timeout`)"}.items()
}
