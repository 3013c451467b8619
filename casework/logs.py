"""structlog for the engine: JSON lines when not on a terminal, readable text on one.

Workflow code logs through `workflow.logger` (stdlib, replay-aware); the stdlib records are rendered
by the same structlog processors so all lines look alike.
"""

from __future__ import annotations

import logging
import sys

import structlog
from temporalio import workflow


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
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The workflow's context goes in its own field, not glued onto the message.
    workflow.logger.workflow_info_on_message = False
