"""structlog for the engine: JSON lines when not on a terminal, readable text on one; no secret and
no personal data in either.

Workflow code logs through `workflow.logger` (stdlib, replay-aware); the stdlib records are rendered
by the same structlog processors so all lines look alike. Every line, structlog's or a stdlib
record's (with its `extra=`), passes `redact` just before it is rendered, so a careless log call
cannot leak what a case holds: the keys stay, the values of secret and personal keys become
"[redacted]", URLs lose their userinfo and query string, and known secrets are cut out of any text
(messages and exception tracebacks included).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import threading
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from pydantic import BaseModel
from temporalio import workflow
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

REDACTED = "[redacted]"

# Keys whose values are secrets wherever they appear (matched in the lower-cased key, '-' read as '_').
_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase|code)|(^|_)pwd$|secret|token|api_?key|authori[sz]ation|^auth$|cookie|credential"
    r"|private_?key|signature|(door|access|gate|entry|alarm|lock|key|building)_?code|(^|_)pin$")

# Keys whose values are personal data: who the customer is and how to reach them, and the free text
# that customers and staff write into cases (the text fields of domain/commands.py and
# domain/events.py; tests/test_log_redaction.py checks that none is missed).
PERSONAL_KEYS = frozenset({
    "name", "customer_name", "full_name", "first_name", "last_name", "contact", "email", "phone",
    "mobile", "telephone", "address", "street", "postcode", "place",
    "subject", "description", "message", "text", "note", "notes", "question", "comment", "reason",
    "summary", "work_done", "parts_used", "need", "body",
})

# `address` also names network endpoints (Temporal's host:port), which are not personal and stay.
_ENDPOINT = re.compile(r"[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5}")

# Keys holding a webhook URL: logged as its origin only, since a webhook's path is often its token.
_ORIGIN_ONLY = frozenset({"webhook", "webhook_url"})

# The rendered message and traceback are text: scrubbed, never dropped.
_TEXT_KEYS = frozenset({"event", "exception", "stack"})

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+")
_AUTHORIZATION = re.compile(r"(?i)\b((?:proxy-)?authorization\s*[=:]\s*)(\w+\s+)?[^\s,;'\"]+")
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{8,}")
_KEY_VALUE = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_?key|access_?code|door_?code)"
                        r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&'\"]+)")
_WHSEC = re.compile(r"whsec_[A-Za-z0-9+/=]+")
_PYDANTIC_INPUT = re.compile(r"input_value=.*?(?=, input_type=)")  # pydantic quotes the bad input

_known: set[str] = set()
_known_lock = threading.Lock()
_MAX_DEPTH = 12


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(str(key).lower().replace("-", "_")))


def never_log(*values: str) -> None:
    """Secrets known at run time (a signing key read from a file, a webhook URL's query): cut out of
    every log line from now on, wherever they appear. Values too short to be told apart from
    ordinary words are not registered."""
    with _known_lock:
        _known.update(v for v in values if v and len(v) >= 8)


def safe_url(url: str, origin_only: bool = False) -> str:
    """The URL without its userinfo, query string and fragment (and path, if `origin_only`)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, "" if origin_only else parts.path, "", ""))


def scrub(text: str) -> str:
    """Free text (a message, a traceback) with known secrets, credentials and URLs' secret parts cut."""
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, REDACTED)
    text = _WHSEC.sub(f"whsec_{REDACTED}", text)
    text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _PYDANTIC_INPUT.sub(f"input_value={REDACTED}", text)
    return _URL.sub(lambda m: safe_url(m.group(0)), text)


def _clean(key: Any, value: Any, depth: int = 0) -> Any:
    name = str(key).lower().replace("-", "_")
    if value is None or isinstance(value, bool):
        return value  # says only whether something is set
    if is_secret_key(name):
        return REDACTED
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset) and depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):  # the structure stays, each key judged on its own
        return {k: _clean(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(key, v, depth + 1) for v in value]
    if name in PERSONAL_KEYS and not (name == "address" and isinstance(value, str) and _ENDPOINT.fullmatch(value)):
        return REDACTED
    if isinstance(value, str):
        return safe_url(value, origin_only=True) if name in _ORIGIN_ONLY else scrub(value)
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}")
    if isinstance(value, int | float | datetime | date | timedelta | Enum):
        return value
    return scrub(str(value))


def redact(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """The structlog processor: every value judged by its key; the message and traceback scrubbed."""
    return {key: (scrub(value) if key in _TEXT_KEYS and isinstance(value, str) else _clean(key, value))
            for key, value in event_dict.items()}


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer(default=str) if json_lines else structlog.dev.ConsoleRenderer()
    shared = [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
              structlog.stdlib.add_logger_name, structlog.processors.TimeStamper(fmt="iso", utc=True)]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True)
    handler = logging.StreamHandler(sys.stderr)
    # The traceback is made text before `redact`, so what an exception says is scrubbed too.
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, redact, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The workflow's context goes in its own field, not glued onto the message.
    workflow.logger.workflow_info_on_message = False
    forward_core_logs()


def forward_core_logs() -> None:
    """The Temporal SDK core (Rust) writes its own lines to stdout, past this pipeline: a failed
    workflow task's line quotes the bad input (a customer's name). Forwarded to the `temporalio.core`
    logger instead, its lines go through `redact` like every other. Set before any client connects."""
    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=forwarding)))
    Runtime.set_default(runtime, error_if_already_set=False)
