"""The dev server the benchmarks run on: one place for how it is started (its file in the run's
directory, casework's search attributes, pydantic payloads), so every figure is taken on the same
server settings."""

from __future__ import annotations

from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from casework.config import temporal_binary
from workflows.contract import SEARCH_ATTRIBUTES


async def local_server(directory: Path) -> WorkflowEnvironment:
    """A real `temporal server start-dev` with its database in `directory` (the caller shuts it down)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), data_converter=pydantic_data_converter,
        dev_server_database_filename=str(Path(directory) / "temporal.db"), search_attributes=SEARCH_ATTRIBUTES)
